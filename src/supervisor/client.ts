// Typed client of supervisord's XML-RPC interface (namespace `supervisor.`),
// the calls the node makes (slapgrid.md §4.6, §7.2). Faults become
// SupervisorFault with supervisord's fault name.
import { XmlRpcFault, xmlRpcCall, type XmlRpcValue } from './xmlrpc.js';

/** supervisor/xmlrpc.py Faults. */
export const FAULT_NAMES: Record<number, string> = {
  1: 'UNKNOWN_METHOD',
  2: 'INCORRECT_PARAMETERS',
  3: 'BAD_ARGUMENTS',
  4: 'SIGNATURE_UNSUPPORTED',
  6: 'SHUTDOWN_STATE',
  10: 'BAD_NAME',
  11: 'BAD_SIGNAL',
  20: 'NO_FILE',
  21: 'NOT_EXECUTABLE',
  30: 'FAILED',
  40: 'ABNORMAL_TERMINATION',
  50: 'SPAWN_ERROR',
  60: 'ALREADY_STARTED',
  70: 'NOT_RUNNING',
  80: 'SUCCESS',
  90: 'ALREADY_ADDED',
  91: 'STILL_RUNNING',
  92: 'CANT_REREAD',
};

export class SupervisorFault extends Error {
  readonly faultName: string;
  constructor(
    readonly method: string,
    readonly faultCode: number,
    readonly faultString: string,
  ) {
    const faultName = FAULT_NAMES[faultCode] ?? `FAULT_${faultCode}`;
    super(`supervisord ${method}: ${faultString || faultName}`);
    this.name = 'SupervisorFault';
    this.faultName = faultName;
  }
}

export interface SupervisorState {
  /** 2 FATAL, 1 RUNNING, 0 RESTARTING, -1 SHUTDOWN */
  statecode: number;
  statename: 'FATAL' | 'RUNNING' | 'RESTARTING' | 'SHUTDOWN' | (string & {});
}

export type ProcessStateName =
  | 'STOPPED' | 'STARTING' | 'RUNNING' | 'BACKOFF' | 'STOPPING' | 'EXITED' | 'FATAL' | 'UNKNOWN';

export interface ProcessInfo {
  name: string;
  group: string;
  description: string;
  start: number;
  stop: number;
  now: number;
  state: number;
  statename: ProcessStateName;
  spawnerr: string;
  exitstatus: number;
  logfile: string;
  stdout_logfile: string;
  stderr_logfile: string;
  pid: number;
}

/** One entry of start/stopProcessGroup results. */
export interface ProcessStatus {
  name: string;
  group: string;
  status: number;
  description: string;
}

export interface ConfigChanges {
  added: string[];
  changed: string[];
  removed: string[];
}

/** reloadConfig's timeout at least (see there). */
export const RELOAD_TIMEOUT_MS = 300_000;

export class SupervisorClient {
  constructor(
    readonly socketPath: string,
    private readonly timeout = 30_000,
  ) {}

  private call<T>(method: string, ...params: XmlRpcValue[]): Promise<T> {
    return this.callWithin<T>(this.timeout, method, ...params);
  }

  private async callWithin<T>(timeout: number, method: string, ...params: XmlRpcValue[]): Promise<T> {
    try {
      return (await xmlRpcCall({ socketPath: this.socketPath, timeout }, `supervisor.${method}`, params)) as T;
    } catch (error) {
      if (error instanceof XmlRpcFault) throw new SupervisorFault(method, error.faultCode, error.faultString);
      throw error;
    }
  }

  getState(): Promise<SupervisorState> {
    return this.call('getState');
  }

  getPID(): Promise<number> {
    return this.call('getPID');
  }

  /**
   * Rereads the configuration files; nothing is started or stopped. It reads
   * every group file: with 1,000 partitions on a loaded host it took more than
   * 30 s (issue 29), hence its own, longer timeout.
   */
  async reloadConfig(): Promise<ConfigChanges> {
    const [[added = [], changed = [], removed = []] = []] = await this.callWithin<string[][][]>(Math.max(this.timeout, RELOAD_TIMEOUT_MS), 'reloadConfig');
    return { added, changed, removed };
  }

  addProcessGroup(name: string): Promise<boolean> {
    return this.call('addProcessGroup', name);
  }

  /** Fails with STILL_RUNNING while a process of the group runs. */
  removeProcessGroup(name: string): Promise<boolean> {
    return this.call('removeProcessGroup', name);
  }

  startProcessGroup(name: string, wait = true): Promise<ProcessStatus[]> {
    return this.call('startProcessGroup', name, wait);
  }

  stopProcessGroup(name: string, wait = true): Promise<ProcessStatus[]> {
    return this.call('stopProcessGroup', name, wait);
  }

  /** `name` is `group:process`. */
  startProcess(name: string, wait = true): Promise<boolean> {
    return this.call('startProcess', name, wait);
  }

  startAllProcesses(wait = true): Promise<ProcessStatus[]> {
    return this.call('startAllProcesses', wait);
  }

  stopAllProcesses(wait = true): Promise<ProcessStatus[]> {
    return this.call('stopAllProcesses', wait);
  }

  /** `name` is `group:process`. */
  getProcessInfo(name: string): Promise<ProcessInfo> {
    return this.call('getProcessInfo', name);
  }

  getAllProcessInfo(): Promise<ProcessInfo[]> {
    return this.call('getAllProcessInfo');
  }

  shutdown(): Promise<boolean> {
    return this.call('shutdown');
  }
}
