// The `slapos` command tree: node, proxy and client sub-commands. Loaded by
// main.ts only when a command or a help text is asked for; each command's
// module defines its options and imports what it runs inside its action.
import { Command } from 'commander';

// main.ts takes commander's error class from here, so that it is the one the tree throws (bundled or not).
export { CommanderError } from 'commander';
import { formatCommand } from './commands/format.js';
import { softwareCommand } from './commands/software.js';
import { instanceCommand } from './commands/instance.js';
import { collectCommand, reportCommand } from './commands/report.js';
import { bootCommand } from './commands/boot.js';
import { statusCommand } from './commands/status.js';
import { bangCommand, promiseCommand, supervisorctlAliasCommands, supervisorctlCommand, supervisordCommand } from './commands/node-misc.js';
import { proxyCommand } from './commands/proxy.js';
import { clientCommands } from './commands/client.js';
import { configCommand } from './commands/config.js';
import { daemonCommand } from './commands/daemon.js';
import { installSystemdCommand } from './commands/install-systemd.js';
import { cachelookupCommand } from './commands/cachelookup.js';
import { computerCommand, serviceCommand } from './commands/hateoas.js';
import { nodeRegisterCommand } from './commands/register.js';
import { pruneCommand } from './commands/prune.js';
import { completeCommand } from './commands/complete.js';
import { consoleCommand } from './commands/console.js';
import { configureCommand } from './commands/configure.js';

/** `slapos node <name>`: the commands the node's timers run, each built alone when it is the one asked for. */
const NODE_COMMANDS: Record<string, () => Command> = {
  format: formatCommand,
  software: softwareCommand,
  instance: instanceCommand,
  report: reportCommand,
  collect: collectCommand,
  boot: bootCommand,
  status: statusCommand,
  promise: promiseCommand,
  bang: bangCommand,
  supervisord: supervisordCommand,
  supervisorctl: supervisorctlCommand,
  config: configCommand,
  daemon: daemonCommand,
  'install-systemd': installSystemdCommand,
};

/**
 * The command tree. With the command line's words, a `slapos node <name> …`
 * whose <name> is one of NODE_COMMANDS gets a tree with that command only:
 * it parses the same, and building the ~50 others cost as much as loading
 * them (docs/performance.md). Any other line gets the whole tree (help
 * listings, suggestions for a misspelt command, completion).
 */
export function buildProgram(words: readonly string[] = []): Command {
  const only = words[0] === 'node' && words[1] !== undefined && Object.hasOwn(NODE_COMMANDS, words[1]) ? NODE_COMMANDS[words[1]] : undefined;
  const program = new Command('slapos')
    .description('SlapOS compute node and minimal master (TypeScript implementation)')
    // Handled by main() before parsing (package.json is read only then); listed here for --help.
    .option('-V, --version', 'print the project name and version (with --json: also the SLAP protocol level, as JSON)')
    .option('--cfg <file>', 'configuration file (default: $SLAPOS_CONFIGURATION or /etc/opt/slapos/slapos.cfg; client commands: $SLAPOS_CLIENT_CONFIGURATION or ~/.slapos/slapos-client.cfg)')
    .option('-v, --verbose', 'show debug messages')
    .option('-q, --quiet', 'show only warnings and errors')
    .option('--log-file <file>', 'also write JSON log lines to this file')
    .showHelpAfterError('(add --help for usage)')
    .enablePositionalOptions(false);

  const node = new Command('node')
    .summary('operate this compute node: format, software, instance, report, …')
    .description('Commands run on a compute node, usually by systemd timers.');
  for (const sub of only ? [only()] : [
    formatCommand(),
    softwareCommand(),
    instanceCommand(),
    reportCommand(),
    collectCommand(),
    bootCommand(),
    statusCommand(),
    promiseCommand(),
    bangCommand(),
    supervisordCommand(),
    supervisorctlCommand(),
    configCommand(),
    daemonCommand(),
    installSystemdCommand(),
    ...supervisorctlAliasCommands(),
    pruneCommand(),
    nodeRegisterCommand(),
  ]) {
    node.addCommand(sub);
  }
  program.addCommand(node);
  if (!only) addOtherCommands(program);

  // Options are accepted after the sub-command too (`slapos node format --cfg x`), as the reference.
  const inherit = (command: Command) => {
    for (const sub of command.commands) {
      // A command's own --help says what it does: its summary when it has no longer description.
      if (sub.description() === '' && sub.summary() !== '') sub.description(sub.summary());
      if (sub.commands.length === 0) {
        sub.option('--cfg <file>', 'configuration file').option('-v, --verbose', 'show debug messages')
          .option('-q, --quiet', 'show only warnings and errors').option('--log-file <file>', 'also write JSON log lines to this file');
      }
      inherit(sub);
    }
  };
  inherit(program);
  // Syntax errors exit 2 (argparse, main.ts); a command's own usage errors 1 (the reference's UsageError); unknown sub-commands 5.
  const override = (command: Command) => {
    command.exitOverride();
    for (const sub of command.commands) override(sub);
  };
  override(program);
  return program;
}

function addOtherCommands(program: Command): void {
  program.addCommand(proxyCommand());
  program.addCommand(cachelookupCommand());
  for (const sub of clientCommands()) program.addCommand(sub);
  program.addCommand(serviceCommand());
  program.addCommand(computerCommand());
  program.addCommand(consoleCommand());
  program.addCommand(configureCommand());
  program.addCommand(completeCommand(() => program));
}
