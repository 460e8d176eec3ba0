// What every view does with its host: take on the host's theme (its CSS variables and light or dark), now and
// whenever it changes, and connect.
function applyTheme(context) {
  for (const [name, value] of Object.entries(context?.styles?.variables ?? {})) {
    if (value) document.documentElement.style.setProperty(name, value);
  }
  if (context?.theme) document.documentElement.style.colorScheme = context.theme;
}

async function connectView(app) {
  app.onhostcontextchanged = (context) => applyTheme(context);
  await app.connect();
  applyTheme(app.getHostContext());
}
