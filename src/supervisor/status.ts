// Process states for `slapos node status`: read from supervisord (effect) and
// formatted as text (pure).
import { accessSync, constants } from 'node:fs';
import { SupervisorClient } from './client.js';
import { nodeSupervisordPaths, probeSupervisord } from './daemon.js';

export interface ProcessesStatus {
  /** `unreadable`: the socket exists but this user may not use it (supervisord's state is unknown). */
  supervisord: { running: boolean; socket: string; pid?: number; unreadable?: string };
  processes: { group: string; name: string; state: string; pid: number; description: string }[];
}

export async function readProcessesStatus(instanceRoot: string): Promise<ProcessesStatus> {
  const paths = nodeSupervisordPaths(instanceRoot);
  try {
    accessSync(paths.socket, constants.R_OK | constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      return { supervisord: { running: false, socket: paths.socket, unreadable: `permission denied on ${paths.socket}` }, processes: [] };
    }
  }
  if ((await probeSupervisord(paths.socket)) !== 'running') {
    return { supervisord: { running: false, socket: paths.socket }, processes: [] };
  }
  const client = new SupervisorClient(paths.socket, 5_000);
  const [pid, infos] = await Promise.all([client.getPID(), client.getAllProcessInfo()]);
  return {
    supervisord: { running: true, socket: paths.socket, pid },
    processes: infos
      .map((info) => ({ group: info.group, name: info.name, state: info.statename, pid: info.pid, description: info.description }))
      .sort((a, b) => `${a.group}:${a.name}`.localeCompare(`${b.group}:${b.name}`)),
  };
}

export function formatProcessesStatus(status: ProcessesStatus): string {
  if (status.supervisord.unreadable) return `supervisord: unknown, could not read it (${status.supervisord.unreadable})`;
  if (!status.supervisord.running) return `supervisord: not running (${status.supervisord.socket}); start it with slapos node supervisord`;
  const lines = [`supervisord: running, pid ${status.supervisord.pid} (${status.supervisord.socket})`];
  if (status.processes.length === 0) lines.push('no processes');
  const width = Math.max(0, ...status.processes.map((p) => `${p.group}:${p.name}`.length));
  for (const p of status.processes) lines.push(`  ${`${p.group}:${p.name}`.padEnd(width)}  ${p.state.padEnd(8)}  ${p.description}`);
  return lines.join('\n');
}
