const fs = require('fs');
for (const f of process.argv.slice(2)) {
  const p = JSON.parse(fs.readFileSync(f));
  const self = new Map(); const byId = new Map(p.nodes.map(n => [n.id, n]));
  const dt = p.timeDeltas; let total = 0;
  const counts = new Map();
  for (let i = 0; i < p.samples.length; i++) { counts.set(p.samples[i], (counts.get(p.samples[i]) || 0) + (dt[i] || 0)); total += dt[i] || 0; }
  for (const [id, t] of counts) { const n = byId.get(id); const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`; self.set(k, (self.get(k) || 0) + t); }
  console.log(f, 'total ms', (total/1000).toFixed(0));
  [...self.entries()].sort((a,b)=>b[1]-a[1]).slice(0,30).forEach(([k,t]) => console.log((t/1000).toFixed(0).padStart(7), (100*t/total).toFixed(1).padStart(5)+'%', k));
}
