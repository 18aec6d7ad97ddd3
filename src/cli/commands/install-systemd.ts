// `slapos node install-systemd`: the units of systemd/, rendered for this
// checkout, into <root>/etc/systemd/system; optionally enabled.
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { defineAction } from '../context.js';
import { CliError } from '../exit.js';

export function installSystemdCommand(): Command {
  const command = new Command('install-systemd')
    .summary('install (or remove) the systemd units and timers of the node and the master')
    .description(
      'Renders the units of systemd/ for this installation (node binary, project directory, --cfg file) ' +
        'into <root>/etc/systemd/system. Files already up to date are left alone. --enable turns on boot ' +
        '(slapos-node-format), supervisord and the four timers; --daemon enables slapos-node-daemon ' +
        'instead of the timers; --proxy enables the master. Without systemd running, enabling only ' +
        'creates the symlinks (systemctl --root).\n\nExit status: 0 done, 1 failure, 5 not root.',
    )
    .option('--root <dir>', 'install under this root instead of / (packaging, tests)', '/')
    .option('--node <path>', 'node binary the units run', process.execPath)
    .option('--enable', 'enable boot, supervisord and the timers')
    .option('--daemon', 'with --enable: the daemon instead of the timers')
    .option('--proxy', 'also enable slapos-proxy.service (the master)')
    .option('--print', 'print the rendered units and change nothing')
    .option('--uninstall', 'disable and remove the units (configuration and data are kept)');
  return defineAction(command, async (ctx, _args, options) => {
    // Loaded when the command runs: it writes through safe-fs (the native addon), which `--help` must not load.
    const {
      DAEMON_UNIT, DEFAULT_ENABLED, NODE_TIMERS, PROJECT_DIR, PROXY_UNIT, installUnits, removeUnits, renderUnits,
      systemctl, systemdRunning, unitDir, unitNames, unitVars,
    } = await import('../../node/systemd.js');
    const root = path.resolve(String(options.root));
    if (root === '/' && !options.print) ctx.requireRoot();
    const dir = unitDir(root);
    if (options.uninstall) {
      const names = unitNames();
      try {
        systemctl(['disable', '--now', ...names], root);
      } catch {
        // Units that were never enabled, or no systemctl: the files go anyway.
      }
      const removed = removeUnits(names, dir);
      if (root === '/' && systemdRunning()) systemctl(['daemon-reload'], root);
      ctx.out(removed.length ? `removed ${removed.join(', ')} from ${dir}` : `no slapos units in ${dir}`);
      return;
    }
    let databaseUri: string | undefined;
    try {
      // Under --root the configuration being installed is <root>/<cfg>; the units name <cfg>.
      const staged = path.join(root, path.resolve(ctx.configFile));
      const { loadConfig } = await import('../../config/load.js');
      databaseUri = loadConfig(root !== '/' && existsSync(staged) ? staged : ctx.configFile).slapproxy.database_uri;
    } catch (error) {
      ctx.log.warn({ err: error, code: 'CONFIG_UNREADABLE', config: ctx.configFile }, "the units use the configuration anyway, with the master's data in /opt/slapos");
    }
    let units;
    try {
      units = renderUnits(unitVars({ node: String(options.node), project: PROJECT_DIR, configFile: path.resolve(ctx.configFile), databaseUri }));
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    if (options.print) {
      for (const [name, text] of units) ctx.out(`### ${name}\n${text}`);
      return;
    }
    const written = installUnits(units, dir);
    ctx.out(written.length ? `installed ${written.join(', ')} in ${dir}` : `units in ${dir} are up to date`);
    if (root === '/' && systemdRunning()) systemctl(['daemon-reload'], root);
    if (options.enable) {
      const enable = options.daemon
        ? [...DEFAULT_ENABLED.filter((u) => !NODE_TIMERS.includes(u)), DAEMON_UNIT]
        : DEFAULT_ENABLED;
      if (options.daemon) {
        try {
          systemctl(['disable', '--now', ...NODE_TIMERS], root);
        } catch {
          // not enabled
        }
      }
      systemctl(['enable', '--now', ...enable, ...(options.proxy ? [PROXY_UNIT] : [])], root);
      ctx.out(`enabled ${[...enable, ...(options.proxy ? [PROXY_UNIT] : [])].join(', ')}${systemdRunning() && root === '/' ? ' (and started)' : ''}`);
    } else if (options.proxy) {
      systemctl(['enable', '--now', PROXY_UNIT], root);
      ctx.out(`enabled ${PROXY_UNIT}`);
    }
  });
}
