# ruff: noqa: E501  (minified inline JavaScript)
"""The interactive API documentation page (``/api/docs``): self-contained (no CDN), it reads
``/api/openapi.json`` and lets you call each operation with a bearer token."""

import base64
import hashlib

DOCS_HTML = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GridTokenX central API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2733;background:#f6f8fa}
header{background:#12324a;color:#fff;padding:12px 20px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header h1{font-size:18px;margin:0}header input{width:420px;max-width:90vw;padding:4px}
main{padding:12px 20px;max-width:1100px}
details{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:6px 0}
summary{cursor:pointer;padding:8px 10px;display:flex;gap:10px;align-items:center}
.m{font-weight:700;width:64px;text-align:center;border-radius:4px;color:#fff;padding:1px 0;font-size:12px}
.GET{background:#1f7a45}.POST{background:#1b5fab}.PUT,.PATCH{background:#a26500}.DELETE{background:#b22a2a}
.p{font-family:ui-monospace,monospace}.acc{margin-left:auto;font-size:12px;color:#57606a}
.body{padding:8px 12px;border-top:1px solid #eaeef2}
textarea{width:100%;min-height:110px;font-family:ui-monospace,monospace}
pre{background:#0d1117;color:#e6edf3;padding:8px;overflow:auto;max-height:320px}
h2{font-size:15px;margin:18px 0 4px;text-transform:capitalize}label{display:block;margin:4px 0}
</style></head><body>
<header><h1>GridTokenX central API</h1><a style="color:#9cd" href="/api/openapi.json">openapi.json</a>
<label>Bearer token <input id="tok" aria-describedby="tokhelp"></label>
<small id="tokhelp">An access token from POST /api/v1/auth/login; it stays in this page.</small></header>
<main id="ops">Loading…</main>
<script>
const esc=s=>String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
function example(schema,doc,depth){depth=depth||0;if(!schema||depth>4)return null;
 if(schema.$ref){return example(doc.components.schemas[schema.$ref.split('/').pop()],doc,depth+1)}
 if(schema.examples)return schema.examples[0];if(schema.anyOf)return example(schema.anyOf[0],doc,depth+1);
 if(schema.enum)return schema.enum[0];
 switch(schema.type){case 'object':{const o={};for(const[k,v]of Object.entries(schema.properties||{}))o[k]=example(v,doc,depth+1);return o}
 case 'array':return [example(schema.items,doc,depth+1)];case 'integer':return schema.minimum||0;case 'boolean':return false;
 case 'string':return schema.format==='uuid'?'00000000-0000-0000-0000-000000000000':schema.format==='date-time'?new Date().toISOString():'';}
 return null}
async function run(btn){const d=btn.closest('details');const path=d.dataset.path,method=d.dataset.method;
 let url=path;for(const i of d.querySelectorAll('input[data-in=path]'))url=url.replace('{'+i.name+'}',encodeURIComponent(i.value));
 const q=new URLSearchParams();for(const i of d.querySelectorAll('input[data-in=query]'))if(i.value)q.set(i.name,i.value);
 if([...q].length)url+='?'+q;const h={};const t=document.getElementById('tok').value.trim();if(t)h.Authorization='Bearer '+t;
 const ta=d.querySelector('textarea');const init={method,headers:h};if(ta){h['Content-Type']='application/json';init.body=ta.value}
 const out=d.querySelector('pre');out.textContent='…';
 try{const r=await fetch(url,init);const txt=await r.text();let shown=txt;try{shown=JSON.stringify(JSON.parse(txt),null,2)}catch(e){}
 out.textContent=r.status+' '+r.statusText+'\n\n'+shown}catch(e){out.textContent=String(e)}}
fetch('/api/openapi.json').then(r=>r.json()).then(doc=>{const groups={};
 for(const[path,ops]of Object.entries(doc.paths))for(const[method,op]of Object.entries(ops)){
  const tag=(op.tags&&op.tags[0])||'other';(groups[tag]=groups[tag]||[]).push([path,method.toUpperCase(),op])}
 let html='';for(const[tag,ops]of Object.entries(groups)){html+='<h2>'+esc(tag)+'</h2>';
  for(const[path,method,op]of ops){const acc=Array.isArray(op['x-access'])?'roles: '+op['x-access'].join(', '):'public';
   html+='<details data-path="'+esc(path)+'" data-method="'+method+'"><summary><span class="m '+method+'">'+method+
   '</span><span class="p">'+esc(path)+'</span><span>'+esc(op.summary||'')+'</span><span class="acc">'+esc(acc)+'</span></summary><div class="body">';
   if(op.description)html+='<p>'+esc(op.description)+'</p>';
   for(const p of op.parameters||[])html+='<label>'+esc(p.in)+' <b>'+esc(p.name)+'</b>'+(p.required?' *':'')+
     ' <input data-in="'+esc(p.in)+'" name="'+esc(p.name)+'"></label>';
   if(op.requestBody){const s=op.requestBody.content['application/json'].schema;
     html+='<label>JSON body</label><textarea>'+esc(JSON.stringify(example(s,doc),null,2))+'</textarea>'}
   html+='<p>Responses: '+Object.keys(op.responses).map(esc).join(', ')+'</p><button onclick="run(this)">Send</button><pre></pre></div></details>'}}
 document.getElementById('ops').innerHTML=html});
</script></body></html>
"""


def _script_hash(html: str) -> str:
    script = html.split("<script>", 1)[1].split("</script>", 1)[0]
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


#: The page's own policy (the API's ``default-src 'none'`` would block it): its one inline script by hash, inline
#: styles, calls to this origin only; never framed.
DOCS_CSP = (f"default-src 'none'; script-src {_script_hash(DOCS_HTML)}; style-src 'unsafe-inline'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
