/**
 * `cogd start --foreground`: poll at start and then on the cron schedule until SIGINT/SIGTERM; the
 * first signal drains (jobs in flight are interrupted and run again on the next start), a second
 * one exits at once.
 */
import cron from 'node-cron';
import { resolveConfig, type RunFlags } from '../../config.js';
import { describeError, UsageError } from '../../errors.js';
import { watchBatchName } from '../../manifest/names.js';
import { openContext } from '../context.js';
import { consoleLevel, type OutputFlags } from '../output.js';
import { summaryLine } from './poll.js';

export interface StartFlags extends RunFlags, OutputFlags {
  foreground?: boolean;
}

export async function startCommand(flags: StartFlags): Promise<number> {
  if (flags.foreground !== true) {
    throw new UsageError('cogd start runs in the foreground for now', 'pass --foreground (run it under nohup, tmux or systemd to keep it going)');
  }
  const config = resolveConfig(flags);
  const ctx = await openContext(config, flags.verbose === true || flags.debug === true ? consoleLevel(flags) : 'info');
  const { daemon, watch, log } = ctx;
  log.info('Daemon:Started', { watch: watch.id, batch: watchBatchName(watch.pattern), schedule: config.schedule, home: config.home, pid: process.pid });
  process.stdout.write(`watch ${watch.id} ${watchBatchName(watch.pattern)}: polling s3://${watch.inputBucket} on "${config.schedule}"\n`);

  let polling = false;
  const tick = async (): Promise<void> => {
    if (polling) return; // a slow poll is never overlapped by the next one
    polling = true;
    try {
      const runIds = await daemon.poll(watch);
      void daemon.settled(runIds).then((runs) => {
        for (const run of runs) if (run.state === 'done') process.stdout.write(`${summaryLine(run, config.home)}\n`);
      });
    } catch (error) {
      log.error('Watch:PollFailed', { watch: watch.id, reason: describeError(error) });
    } finally {
      polling = false;
    }
  };

  const task = cron.schedule(config.schedule, () => void tick());
  await tick();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn('Daemon:ForcedExit', { signal });
        process.exit(130);
      }
      stopping = true;
      log.info('Daemon:Stopping', { signal });
      process.stderr.write(`cogd: ${signal}: stopping; jobs in flight will run again on the next start\n`);
      void task.stop();
      ctx
        .close()
        .then(() => resolve(0))
        .catch((error: unknown) => {
          process.stderr.write(`cogd: ${describeError(error)}\n`);
          resolve(1);
        });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
