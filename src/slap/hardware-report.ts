// The node's hardware status as it travels to our master (POST
// /reportHardwareStatus, ours only: docs/master.md): the part of the node's
// hardware-status.json (src/accounting/hardware.ts) the fleet view shows —
// CPU, memory, disks, load, temperature, partition totals. One reduction,
// used by both ends: the node sends only this, the master keeps only this and
// refuses a document that does not have its shape (400, nothing stored).

export const HARDWARE_SCHEMA = 'slapos-node/hardware-status/1';
/** The master refuses a larger form field; a node's report is about 1 KiB plus 100 bytes per disk. */
export const MAX_HARDWARE_REPORT = 64 * 1024;
const MAX_DISKS = 64;
const MAX_TEXT = 256;

export interface HardwareReport {
  schema: typeof HARDWARE_SCHEMA;
  /** When the node's collect read the host (ISO 8601). */
  generated_at: string;
  hostname: string;
  kernel: string;
  uptime_seconds: number;
  cpu: { model: string | null; cores: number; load_average: [number, number, number] };
  memory: { total_bytes: number; available_bytes: number; used_bytes: number; swap_total_bytes: number | null; swap_used_bytes: number | null };
  disks: Array<{ filesystem: string; type: string; mount: string; size_bytes: number; used_bytes: number; available_bytes: number }>;
  temperature: { main_celsius: number | null; max_celsius: number | null } | null;
  partitions: { count: number; active: number };
}

class Shape extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
function obj(v: unknown, where: string): Record<string, unknown> {
  if (!isObject(v)) throw new Shape(`${where} must be an object`);
  return v;
}
function num(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Shape(`${where} must be a non-negative number`);
  return v;
}
const numOrNull = (v: unknown, where: string): number | null => (v === null || v === undefined ? null : num(v, where));
function text(v: unknown, where: string): string {
  if (typeof v !== 'string') throw new Shape(`${where} must be a string`);
  return v.slice(0, MAX_TEXT);
}
const textOrNull = (v: unknown, where: string): string | null => (v === null || v === undefined ? null : text(v, where));

/**
 * The report of a hardware-status document (the node's file, or the field the
 * master received). Throws an Error naming the first bad field.
 */
export function hardwareReport(document: unknown): HardwareReport {
  try {
    const d = obj(document, 'the document');
    if (d.schema !== HARDWARE_SCHEMA) throw new Shape(`schema must be ${HARDWARE_SCHEMA}, not ${JSON.stringify(d.schema)?.slice(0, 80)}`);
    const cpu = obj(d.cpu, 'cpu');
    const load = cpu.load_average;
    if (!Array.isArray(load) || load.length !== 3) throw new Shape('cpu.load_average must be a list of 3 numbers');
    const memory = obj(d.memory, 'memory');
    if (!Array.isArray(d.disks)) throw new Shape('disks must be a list');
    if (d.disks.length > MAX_DISKS) throw new Shape(`disks holds more than ${MAX_DISKS} entries`);
    const temperature = d.temperature === null || d.temperature === undefined ? null : obj(d.temperature, 'temperature');
    const partitions = obj(d.partitions, 'partitions');
    const generated = text(d.generated_at, 'generated_at');
    if (Number.isNaN(Date.parse(generated))) throw new Shape('generated_at must be an ISO 8601 time');
    return {
      schema: HARDWARE_SCHEMA,
      generated_at: generated,
      hostname: text(d.hostname, 'hostname'),
      kernel: text(d.kernel, 'kernel'),
      uptime_seconds: num(d.uptime_seconds, 'uptime_seconds'),
      cpu: {
        model: textOrNull(cpu.model, 'cpu.model'), cores: num(cpu.cores, 'cpu.cores'),
        load_average: [num(load[0], 'cpu.load_average[0]'), num(load[1], 'cpu.load_average[1]'), num(load[2], 'cpu.load_average[2]')],
      },
      memory: {
        total_bytes: num(memory.total_bytes, 'memory.total_bytes'), available_bytes: num(memory.available_bytes, 'memory.available_bytes'),
        used_bytes: num(memory.used_bytes, 'memory.used_bytes'),
        swap_total_bytes: numOrNull(memory.swap_total_bytes, 'memory.swap_total_bytes'), swap_used_bytes: numOrNull(memory.swap_used_bytes, 'memory.swap_used_bytes'),
      },
      disks: d.disks.map((raw, i) => {
        const disk = obj(raw, `disks[${i}]`);
        return {
          filesystem: text(disk.filesystem, `disks[${i}].filesystem`), type: text(disk.type, `disks[${i}].type`), mount: text(disk.mount, `disks[${i}].mount`),
          size_bytes: num(disk.size_bytes, `disks[${i}].size_bytes`), used_bytes: num(disk.used_bytes, `disks[${i}].used_bytes`),
          available_bytes: num(disk.available_bytes, `disks[${i}].available_bytes`),
        };
      }),
      // Temperatures may be negative in principle; a sensor reading is kept when it is a finite number.
      temperature: temperature === null ? null : {
        main_celsius: typeof temperature.main_celsius === 'number' && Number.isFinite(temperature.main_celsius) ? temperature.main_celsius : null,
        max_celsius: typeof temperature.max_celsius === 'number' && Number.isFinite(temperature.max_celsius) ? temperature.max_celsius : null,
      },
      partitions: { count: num(partitions.count, 'partitions.count'), active: num(partitions.active, 'partitions.active') },
    };
  } catch (error) {
    if (error instanceof Shape) throw new Error(`hardware status: ${error.message}`);
    throw error;
  }
}
