// `slapos-watchdog --cfg <slapos.cfg>` (bin/slapos-watchdog.js): the process
// supervisord runs as [eventlistener:watchdog]. Separate from the `slapos`
// command so that it starts fast and its stdout holds only the protocol.
import { parseArgs } from 'node:util';
import { configPath, loadConfig, requireKeys } from '../config/load.js';
import { createLogger } from '../util/log.js';
import { partitionBanger } from './bang.js';
import { runWatchdog } from './watchdog.js';

export async function watchdogMain(argv: string[] = process.argv.slice(2)): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { cfg: { type: 'string' }, verbose: { type: 'boolean', short: 'v' } } });
  // Logs to stderr: supervisord keeps it in the listener's log; stdout is the protocol.
  const log = createLogger({ verbose: values.verbose ?? false });
  try {
    const config = loadConfig(configPath(values.cfg));
    const { instance_root } = requireKeys(config, 'slapos', ['instance_root', 'master_url', 'computer_id']);
    await runWatchdog(process.stdin, process.stdout, { instanceRoot: instance_root, bang: partitionBanger(config), log });
    return 0;
  } catch (error) {
    log.error({ code: 'WATCHDOG_FAILED', err: error }, 'watchdog failed');
    return 1;
  }
}
