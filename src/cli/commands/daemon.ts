import { Command } from 'commander';
import { defineAction } from '../context.js';

export function daemonCommand(): Command {
  const command = new Command('daemon')
    .summary('run the software, instance, report and collect loops in one long-running process')
    .description(
      'The alternative to the systemd timers: runs each loop on its [daemon] *_schedule, never twice at ' +
        'once, starts an instance pass at once when a partition is banged, requests a partition or a ' +
        'software release completes, and serves Prometheus metrics on [daemon] metrics_host:metrics_port. ' +
        'Stops on SIGTERM after the running loops ended.\n\n' +
        'Exit status: 0 stopped by a signal, 1 configuration error, 5 not root.',
    );
  return defineAction(command, async (ctx) => {
    const { requireKeys } = await import('../../config/load.js'); // loaded by ctx.config() anyway
    const { runDaemon } = await import('../../node/daemon/daemon.js'); // loaded when the command runs
    const config = ctx.config();
    requireKeys(config, 'slapos', ['computer_id', 'master_url', 'software_root', 'instance_root']);
    ctx.requireRoot();
    const { verbose, quiet, logFile } = ctx.globals;
    const childArgs = [...(verbose ? ['-v'] : []), ...(quiet ? ['-q'] : []), ...(logFile ? ['--log-file', logFile] : [])];
    return runDaemon({ configFile: ctx.configFile, config, log: ctx.log, childArgs });
  });
}
