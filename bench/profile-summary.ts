// Summarizes V8 CPU profiles (from `npm run bench -- --profile DIR`): self time per function
// and per file, highest first, optionally for a time window of the profile (seconds from its
// start; `--timeline` prints the busy share per second to find the window).
//   node bench/profile-summary.ts FILE.cpuprofile [--top N] [--from S] [--to S] [--timeline]

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' }, from: { type: 'string', default: '0' }, to: { type: 'string', default: 'Infinity' }, timeline: { type: 'boolean', default: false } } });
const top = Number(values.top);
for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const fromUs = Number(values.from) * 1e6;
  const toUs = Number(values.to) * 1e6;
  const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  const perSecond: Array<{ busy: number; all: number }> = [];
  let at = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    at += dt;
    const second = Math.floor(at / 1e6);
    perSecond[second] ??= { busy: 0, all: 0 };
    perSecond[second].all += dt;
    if (!idle.has(id)) perSecond[second].busy += dt;
    if (at < fromUs || at >= toUs) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  });
  if (values.timeline) {
    perSecond.forEach((s, i) => console.log(`${String(i).padStart(4)} s  busy ${s ? ((100 * s.busy) / Math.max(1, s.all)).toFixed(0).padStart(3) : '  -'}%`));
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const shortUrl = url.replace(/^file:\/\/.*?\/(packages|node_modules|bench)\//, '$1/');
    byFunction.set(`${functionName || '(anonymous)'} ${shortUrl}:${lineNumber + 1}`, (byFunction.get(`${functionName || '(anonymous)'} ${shortUrl}:${lineNumber + 1}`) ?? 0) + us);
    byFile.set(shortUrl || '(native)', (byFile.get(shortUrl || '(native)') ?? 0) + us);
  }
  const show = (title: string, m: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
    }
  };
  console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
  show('self time by function', byFunction);
  show('self time by file', byFile);
}
