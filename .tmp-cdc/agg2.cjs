const fs = require('fs');
const p = JSON.parse(fs.readFileSync(process.argv[2]));
const byId = new Map(p.nodes.map(n => [n.id, n]));
const counts = new Map(); let total = 0;
for (let i = 0; i < p.samples.length; i++) { counts.set(p.samples[i], (counts.get(p.samples[i]) || 0) + (p.timeDeltas[i] || 0)); total += p.timeDeltas[i] || 0; }
const group = new Map();
for (const [id, t] of counts) { const u = byId.get(id).callFrame.url; let g = u.includes('node_modules/') ? u.split('node_modules/')[1].split('/')[0] : u.includes('/work/main/') ? u.split('/work/main/')[1] : (byId.get(id).callFrame.functionName || u || '(native)'); if (g.startsWith('@')) g = u.split('node_modules/')[1].split('/').slice(0,2).join('/'); group.set(g, (group.get(g) || 0) + t); }
[...group.entries()].sort((a,b)=>b[1]-a[1]).slice(0,25).forEach(([k,t]) => console.log((100*t/total).toFixed(1).padStart(5)+'%', k));
