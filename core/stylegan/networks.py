"""The StyleGAN2 networks: one import point for G and D."""
from .discriminator import Discriminator
from .generator import Generator, MappingNetwork, SynthesisNetwork

__all__ = ["Generator", "Discriminator", "MappingNetwork", "SynthesisNetwork"]
