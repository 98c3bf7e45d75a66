// Atelier, with --auth: a session the server ended (password changed, account removed, sessions
// revoked, or simply expired) gets 401 from the API. Rather than leave a page whose every action
// fails, go back to the sign-in page on the first such answer.
(function () {
  "use strict";
  const fetch0 = window.fetch;
  let leaving = false;
  window.fetch = async function (...args) {
    const answer = await fetch0.apply(this, args);
    const url = String((args[0] && args[0].url) || args[0]);
    if (answer.status === 401 && !leaving && url.includes("/gradio_api/")) {
      leaving = true;
      window.location.reload();
    }
    return answer;
  };
})();
