// "Did you mean …?" for a mistyped flag, command or subcommand: the closest candidate within
// a Levenshtein distance of 2 (case-insensitive), or none. A word is never "corrected" into
// something it shares nothing with: the distance must also be below the word's length (so
// `-x` or `qq` get no suggestion).

/** Edit distance (insertions, deletions, substitutions) between two strings. */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

export const MAX_SUGGESTION_DISTANCE = 2;

/** The candidate closest to `word` (distance ≤ 2 and below its length; the first one listed on a tie), or null. */
export function closest(word: string, candidates: readonly string[]): string | null {
  const w = word.toLowerCase();
  let best: string | null = null;
  let bestDistance = MAX_SUGGESTION_DISTANCE + 1;
  for (const c of candidates) {
    if (c === word) continue;
    const d = levenshtein(w, c.toLowerCase());
    if (d < bestDistance && d < w.length) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}
