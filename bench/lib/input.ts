// Task inputs of a given JSON size: `{ n, t?, pad }` padded with `x` to `bytes` characters.

export function makeInput(n: number, bytes: number, t?: number): { n: number; t?: number; pad: string } {
  const base = t === undefined ? { n, pad: '' } : { n, t, pad: '' };
  const pad = Math.max(0, bytes - JSON.stringify(base).length);
  return { ...base, pad: 'x'.repeat(pad) };
}
