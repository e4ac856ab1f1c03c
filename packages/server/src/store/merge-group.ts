// Both write batches merge consecutive queued operations of one kind into one run.

/** How many operations from `i` on run as one merged operation (1: just this one). */
export function mergeGroup(ops: ReadonlyArray<{ merge?: { kind: string } | undefined }>, i: number): number {
  const kind = ops[i]!.merge?.kind;
  if (kind === undefined) return 1;
  let n = 1;
  while (i + n < ops.length && ops[i + n]!.merge?.kind === kind) n++;
  return n;
}
