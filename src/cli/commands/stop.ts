/** `cogd stop`: asks the home's daemon to stop gracefully and waits until it has. */
import { setTimeout as sleep } from 'node:timers/promises';
import { readOptions, resolveHome } from '../../config/index.js';
import { runningDaemon } from '../../daemon/home.js';
import { CogdError } from '../../errors.js';

export async function stopCommand(flags: Record<string, unknown>): Promise<number> {
  const options = readOptions('stop', flags).command;
  const home = resolveHome(options.home);
  const pid = runningDaemon(home);
  if (pid === undefined) {
    process.stdout.write(`no cogd daemon is running on ${home}\n`);
    return 0;
  }
  const signalled = new Set<number>();
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (let holder = runningDaemon(home); holder !== undefined; holder = runningDaemon(home)) {
    // Signal whichever daemon holds the home now (one may have taken over as the first stopped).
    if (holder > 0 && !signalled.has(holder)) {
      process.kill(holder, 'SIGTERM');
      signalled.add(holder);
    }
    if (Date.now() > deadline) {
      throw new CogdError('StopTimeout', `the cogd daemon (pid ${pid}) is still stopping`, {
        hint: 'wait, or run `cogd stop` again',
      });
    }
    await sleep(100);
  }
  process.stdout.write(`cogd daemon (pid ${pid}) stopped; jobs in flight will run again on the next start\n`);
  return 0;
}
