/**
 * GET /docs: a small self-contained page that renders the OpenAPI document from /docs/json.
 * (@fastify/swagger-ui is not used: its dependencies need Node 22.)
 */
export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ConfigChain validator API</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; color: #222; }
h1 { font-size: 1.4rem; } code, pre { font-family: ui-monospace, monospace; font-size: 0.85rem; }
details { border: 1px solid #ddd; border-radius: 4px; margin: 0.4rem 0; padding: 0.4rem 0.6rem; }
summary { cursor: pointer; } .m { display: inline-block; width: 4rem; font-weight: bold; }
.GET { color: #0a6; } .POST { color: #06c; } pre { background: #f6f6f6; padding: 0.5rem; overflow: auto; }
</style>
</head>
<body>
<h1>ConfigChain validator API</h1>
<p>The machine-readable OpenAPI 3 document is at <a href="/docs/json">/docs/json</a>.
Errors of the v1 API are JSON objects {statusCode, code, error, message}.</p>
<div id="routes">Loading /docs/json ...</div>
<script>
fetch('/docs/json').then((r) => r.json()).then((doc) => {
  const root = document.getElementById('routes');
  root.textContent = '';
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const d = document.createElement('details');
      const s = document.createElement('summary');
      const m = document.createElement('span');
      m.className = 'm ' + method.toUpperCase();
      m.textContent = method.toUpperCase();
      const c = document.createElement('code');
      c.textContent = path;
      s.append(m, c, document.createTextNode('  ' + (op.summary || '')));
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify({ parameters: op.parameters, requestBody: op.requestBody, responses: op.responses }, null, 2);
      d.append(s, pre);
      root.append(d);
    }
  }
}).catch((e) => { document.getElementById('routes').textContent = 'Could not load /docs/json: ' + e; });
</script>
</body>
</html>
`;
