// Node sub-commands of later stages, registered now so that --help lists them.
import { Command } from 'commander';
import { defineAction, notImplemented } from '../context.js';

export function promiseCommand(): Command {
  const command = new Command('promise')
    .summary("run the partitions' promises without reporting (exit 2 on failure)")
    .option('--only-cp <ids>', 'only these partitions (comma-separated ids)');
  return defineAction(command, notImplemented('node promise'));
}

export function bangCommand(): Command {
  const command = new Command('bang')
    .summary('tell the master something happened to this computer (computerBang)')
    .requiredOption('-m, --message <text>', 'what happened');
  return defineAction(command, notImplemented('node bang'));
}

export function supervisordCommand(): Command {
  const command = new Command('supervisord')
    .summary("write the node's supervisord configuration and start it if it is not running")
    .option('-n, --nodaemon', 'run in the foreground');
  return defineAction(command, notImplemented('node supervisord'));
}

export function supervisorctlCommand(): Command {
  const command = new Command('supervisorctl')
    .summary("run supervisorctl against the node's supervisord")
    .argument('[args...]', 'supervisorctl arguments')
    .allowUnknownOption();
  return defineAction(command, notImplemented('node supervisorctl'));
}
