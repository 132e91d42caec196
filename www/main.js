// Starts the page's WebAssembly client; kept out of index.html so that the
// Content-Security-Policy needs no inline script.
import init, { run } from "./pkg/picture_web.js";

init().then(() => run()).catch((error) => {
  const status = document.getElementById("status");
  status.dataset.state = "error";
  status.textContent = `The page could not start: ${error}`;
});
