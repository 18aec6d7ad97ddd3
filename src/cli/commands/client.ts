// Client commands (the user side of the SLAP API).
import { Command } from 'commander';
import { defineAction, notImplemented } from '../context.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function clientCommands(): Command[] {
  const supply = new Command('supply')
    .summary('ask a node to install a software release')
    .argument('<url>', 'software release URL')
    .argument('<node>', 'computer id')
    .option('--json', 'print JSON');
  const remove = new Command('remove')
    .summary('ask a node to remove a software release')
    .argument('<url>', 'software release URL')
    .argument('<node>', 'computer id')
    .option('--json', 'print JSON');
  const request = new Command('request')
    .summary('request an instance; prints its state and connection parameters (exit 2 while not ready)')
    .argument('<title>', 'instance title (reference)')
    .argument('<url>', 'software release URL')
    .option('--type <software-type>', 'software type')
    .option('--state <state>', 'started, stopped or destroyed', 'started')
    .option('--slave', 'request a shared instance')
    .option('--node <k=v>', 'filter on the node (repeatable), e.g. computer_guid=COMP-1', collect)
    .option('--parameters <k=v>', 'instance parameter (repeatable)', collect)
    .option('--parameters-file <file>', 'instance parameters from a JSON file')
    .option('--json', 'print JSON');
  const list = new Command('list').summary('list requested instances').option('--json', 'print JSON');
  const info = new Command('info')
    .summary("show an instance's state, parameters and connection parameters")
    .argument('<title>', 'instance title')
    .option('--json', 'print JSON');
  return [
    defineAction(supply, notImplemented('supply')),
    defineAction(remove, notImplemented('remove')),
    defineAction(request, notImplemented('request')),
    defineAction(list, notImplemented('list')),
    defineAction(info, notImplemented('info')),
  ];
}
