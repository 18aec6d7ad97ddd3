// `slapos node config`: validate slapos.cfg and print the effective values
// (defaults filled in), so an operator can check a file before the timers run.
import { Command } from 'commander';
import { defineAction } from '../context.js';

export function configCommand(): Command {
  const command = new Command('config')
    .summary('check slapos.cfg and print the effective configuration (defaults included)')
    .description(
      'Reads the configuration file (--cfg, $SLAPOS_CONFIGURATION or /etc/opt/slapos/slapos.cfg), ' +
        'validates every known key, warns about unknown ones and prints the values in effect.\n\n' +
        'Exit status: 0 valid, 1 invalid or unreadable.',
    )
    .option('--json', 'print JSON');
  return defineAction(command, async (ctx, _args, options) => {
    const config = ctx.config();
    // Loaded here, not at start-up: it brings the configuration schema (zod), which `slapos --help` does not need.
    const { collectOptions } = await import('../../accounting/settings.js');
    // [collect] is read by `node collect` / `node report` only: check it here too, so a typo fails now, not every minute.
    let collectWarnings = 0;
    const collect = collectOptions(config, (message) => { collectWarnings += 1; ctx.log.warn(message); });
    const sections = {
      slapos: config.slapos,
      // In effect for format: [slapformat] keys set in [slapos] win, as in the reference.
      slapformat: { ...config.slapformat, ...config.slapformatOverrides },
      networkcache: config.networkcache,
      slapproxy: config.slapproxy,
      daemon: config.daemon,
      collect,
    };
    if (options.json) {
      ctx.out(JSON.stringify({ file: config.file, ...sections, unknownKeys: config.unknownKeys, unknownSections: config.unknownSections }, null, 2));
      return;
    }
    const ignored = config.unknownKeys.length + config.unknownSections.length + collectWarnings;
    ctx.out(`# ${config.file}: valid${ignored > 0 ? ` (${ignored} unknown ${ignored === 1 ? 'name' : 'names'} ignored: see the warnings)` : ''}`);
    for (const [name, values] of Object.entries(sections)) {
      if (!config.present.has(name)) continue;
      ctx.out(`\n[${name}]`);
      for (const [key, value] of Object.entries(values)) {
        if (value === undefined) continue;
        const text = Array.isArray(value) ? value.join(' ') : String(value);
        ctx.out(`${key} = ${text}`);
      }
    }
  });
}
