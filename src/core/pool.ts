/**
 * Run tasks with at most `concurrency` in flight, in the order given (callers sort largest first).
 * The first failure stops new tasks from starting; tasks already running finish, then it rethrows.
 */
export async function runPool<T>(items: T[], concurrency: number, task: (item: T, worker: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (id: number) => {
    while (failed === undefined && next < items.length) {
      const item = items[next++];
      try {
        await task(item, id);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, (_, i) => worker(i)));
  if (failed !== undefined) throw failed;
}
