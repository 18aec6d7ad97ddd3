// The keys of slapos.cfg that the node and the master read, with their types
// and defaults, by section. Key names are the reference's (slapformat.md §2,
// slapgrid.md §8); keys we add are marked "ours". slapos.cfg.example documents
// every key listed here.
import * as z from '../vendor/zod-mini.js';
import {
  absolutePath, anyPath, baseName, bool, bytes, cidr4, int, lines, masterUrl, nonEmpty, oneOf, url, words,
} from './types.js';

const opt = <T extends z.ZodMiniType>(schema: T) => z.optional(schema);

export const slaposSection = z.object({
  computer_id: opt(nonEmpty),
  master_url: opt(masterUrl),
  /** reference client: the HATEOAS root (`service`/`computer` commands); default <master_url>/hateoas here. */
  master_rest_url: opt(url),
  key_file: opt(absolutePath),
  cert_file: opt(absolutePath),
  master_ca_file: opt(absolutePath),
  certificate_repository_path: opt(absolutePath),
  software_root: opt(absolutePath),
  instance_root: opt(absolutePath),
  instance_storage_home: opt(absolutePath),
  ipv4_global_network: opt(z.string()),
  buildout: opt(anyPath),
  maximum_periodicity: z.prefault(int(1), '86400'),
  promise_timeout: z.prefault(int(1), '20'),
  /** ours: a default (the reference has none), so one partition's buildout cannot hold the loop forever (issue 23). */
  partition_timeout: z.prefault(int(1), '3600'),
  /** ours: instance buildouts forked from one server per pass (src/executor/fork-server.ts); false: each exec'd. */
  buildout_fork_server: z.prefault(bool, 'true'),
  /** ours: seconds a failing partition waits before its next try, doubled per failure (0 = no backoff). */
  instance_backoff_base: z.prefault(int(0), '60'),
  /** ours: cap of that wait, in seconds. */
  instance_backoff_max: z.prefault(int(1), '3600'),
  maximal_delay: z.prefault(int(0), '0'),
  software_min_free_space: z.prefault(bytes, '1000M'),
  instance_min_free_space: z.prefault(bytes, '1000M'),
  shared_part_list: z.prefault(lines, ''),
  build_time_part_list: z.prefault(lines, ''),
  forbid_supervisord_automatic_launch: z.prefault(bool, 'false'),
  root_check: z.prefault(bool, 'true'),
  pidfile_software: z.prefault(anyPath, '/opt/slapos/slapgrid-sr.pid'),
  pidfile_instance: z.prefault(anyPath, '/opt/slapos/slapgrid-cp.pid'),
  pidfile_report: z.prefault(anyPath, '/opt/slapos/slapgrid-ur.pid'),
  manager_list: z.prefault(words, ''),
  /** reference (cpuset manager): users whose partitions may ask for exclusive CPUs. */
  power_user_list: z.prefault(words, ''),
  signature_private_key_file: opt(absolutePath),
  signature_certificate_list: z.prefault(lines, ''),
  /** Days the usage store keeps reported samples and acknowledged reports (reference: collect_cache). */
  collect_cache: z.prefault(int(1, 3650), '15'),
});

export const slapformatSection = z.object({
  partition_amount: opt(int(0, 10_000)),
  interface_name: opt(nonEmpty),
  ipv6_interface: opt(nonEmpty),
  ipv4_local_network: opt(cidr4),
  partition_has_ipv6_range: z.prefault(bool, 'true'),
  ipv6_prefixshift: z.prefault(int(1, 64), '16'),
  create_tap: z.prefault(bool, 'true'),
  tap_base_name: z.prefault(baseName, 'slaptap'),
  /** ours: "bridge" enslaves taps to interface_name; "route" routes them as the reference does. */
  tap_mode: opt(oneOf('bridge', 'route')),
  tap_ipv6: z.prefault(bool, 'true'),
  tap_gateway_interface: z.prefault(z.string(), ''),
  create_tun: z.prefault(bool, 'false'),
  tun_ipv6: z.prefault(bool, 'true'),
  alter_user: z.prefault(bool, 'true'),
  alter_network: z.prefault(bool, 'true'),
  software_user: z.prefault(baseName, 'slapsoft'),
  partition_base_name: z.prefault(baseName, 'slappart'),
  user_base_name: z.prefault(baseName, 'slapuser'),
  computer_xml: opt(anyPath),
  computer_json: opt(anyPath),
  log_file: opt(anyPath),
  input_definition_file: opt(anyPath),
  output_definition_file: opt(anyPath),
  /** ours: per-partition cgroup limits; none by default. */
  partition_cpu_weight: opt(int(1, 10_000)),
  partition_cpu_quota_percent: opt(int(1, 100_000)),
  partition_memory_max: opt(bytes),
  partition_pids_max: opt(int(1, 4_194_304)),
  /** ours: seconds of the reference's random start delay, used only when set (boot must not wait an hour). */
  random_delay: z.prefault(int(0), '0'),
  /** ours: parent control group of the partition groups (tests use their own). */
  cgroup_parent: z.prefault(baseName, 'slapos'),
  /** ours: name prefix of the tun devices (the reference hard-codes "slaptun"). */
  tun_base_name: z.prefault(baseName, 'slaptun'),
  /** ours: block devices format gives to partitions, one each, in order (docs/managers.md). */
  partition_block_device_list: z.prefault(lines, ''),
  /** ours: routable IPv4 addresses format gives to partitions, one each, in order (docs/managers.md). */
  partition_routable_ipv4_list: z.prefault(lines, ''),
});

export const networkcacheSection = z.object({
  'download-binary-cache-url': opt(z.string()),
  'download-binary-dir-url': opt(z.string()),
  'upload-binary-cache-url': opt(z.string()),
  'upload-binary-dir-url': opt(z.string()),
  'upload-cache-url': opt(z.string()),
  'upload-dir-url': opt(z.string()),
  'shacache-ca-file': opt(absolutePath),
  'shacache-cert-file': opt(absolutePath),
  'shacache-key-file': opt(absolutePath),
  'shadir-ca-file': opt(absolutePath),
  'shadir-cert-file': opt(absolutePath),
  'shadir-key-file': opt(absolutePath),
  'download-from-binary-cache-url-blacklist': z.prefault(lines, ''),
  'upload-to-binary-cache-url-blacklist': z.prefault(lines, ''),
  'download-from-binary-cache-force-url-list': z.prefault(lines, ''),
  'signature-certificate-list': z.prefault(lines, ''),
  // The reference reads these from [networkcache] too ([networkcache] wins over [slapos]).
  'signature-private-key-file': opt(absolutePath),
  'download-cache-url': opt(z.string()),
  'download-dir-url': opt(z.string()),
  /** ours: limits of a cached release's extraction (a tar bomb makes the node build instead). */
  'binary-cache-max-bytes': opt(bytes),
  'binary-cache-max-members': opt(int(1)),
});

export const slapproxySection = z.object({
  host: z.prefault(z.string(), '127.0.0.1'),
  port: z.prefault(int(0, 65_535), '8080'),
  database_uri: z.prefault(z.string(), '/opt/slapos/proxy.db'),
  computer_id: opt(nonEmpty),
  /** ours: binding a non-loopback address without TLS must be asked for explicitly. */
  allow_insecure_bind: z.prefault(bool, 'false'),
  server_key_file: opt(absolutePath),
  server_cert_file: opt(absolutePath),
  /** CA that signs client certificates; with TLS, clients must present one (access rules apply). */
  ca_file: opt(absolutePath),
  /** ours: the CA's private key; the master then issues per-partition certificates. */
  ca_key_file: opt(absolutePath),
  /** reference: lines "<product reference> <software release URL>" (src/master/software-product.ts). */
  software_product_list: z.prefault(z.string(), ''),
  /** reference: where local software release paths live; when it changes, the stored paths under the old root move (src/master/release-root.ts). */
  local_software_release_root: opt(absolutePath),
  /** ours: the network cache's blobs (default: shacache/ beside an SQLite database; needed with PostgreSQL). */
  shacache_directory: opt(absolutePath),
  /** ours: total bytes of cached blobs (507 beyond), largest single blob (413 beyond). */
  shacache_quota: opt(bytes),
  shacache_max_blob: opt(bytes),
  /** ours: who may download from the cache: open (default) or authenticated (a trusted client certificate). */
  shacache_download: z.prefault(z.enum(['open', 'authenticated']), 'open'),
  /** ours: also listen on this unix socket (plain HTTP, callers known by SO_PEERCRED); clients use master_url = unix:<path>. */
  unix_socket: opt(absolutePath),
});

/**
 * [collect]: usage collection and reports (`slapos node collect` / `report`).
 * Not in SECTIONS (load.ts types a fixed set); read from the raw section by
 * src/accounting/settings.ts, which reports unknown keys itself.
 */
export const collectSection = z.object({
  /** reference: measure partition disk usage at all. */
  report_disk_usage: z.prefault(bool, 'true'),
  /** reference (default 86400 there): seconds between two disk walks of one partition. */
  disk_snapshot_time_cycle: z.prefault(int(60), '3600'),
  /** reference: use per-user quota counters (repquota) when the filesystem has them. */
  disk_snapshot_use_quota: z.prefault(bool, 'true'),
  /** ours: seconds all disk walks of one collect run may take together. */
  disk_walk_time_budget: z.prefault(int(1), '10'),
  /** ours: files and directories one walk may visit before it stops (its value is then a lower bound). */
  disk_walk_max_entries: z.prefault(int(1000), '1000000'),
  /** ours: length of a usage report period in seconds (aligned on the epoch). */
  report_period: z.prefault(int(60, 86400), '3600'),
  /** ours: seconds an etc/report script or sbin/destroy may run. */
  report_script_timeout: z.prefault(int(1), '600'),
  /** ours: seconds one report run waits for the etc/prerm programs of a partition to end. */
  prerm_wait: z.prefault(int(0), '30'),
});
export type CollectSection = z.output<typeof collectSection>;

/** ours: `slapos node daemon`, the long-running alternative to the systemd timers. */
export const daemonSection = z.object({
  /** Address of the daemon's /metrics (Prometheus); loopback unless asked otherwise. */
  metrics_host: z.prefault(z.string(), '127.0.0.1'),
  /** 0: no metrics server. */
  metrics_port: z.prefault(int(0, 65_535), '9465'),
  /** croner expressions (5 or 6 fields); empty: the loop never runs on a schedule. */
  software_schedule: z.prefault(z.string(), '* * * * *'),
  instance_schedule: z.prefault(z.string(), '* * * * *'),
  report_schedule: z.prefault(z.string(), '0 0 * * *'),
  collect_schedule: z.prefault(z.string(), '* * * * *'),
  /** Start an instance pass at once on a bang, a request file or a finished software release. */
  watch: z.prefault(bool, 'true'),
});

/** Keys the reference spells with "-" in some places and "_" in others: read both, keep "_". */
export const ALIASES: Record<string, Record<string, string>> = {
  slapos: {
    'partition-timeout': 'partition_timeout',
    'signature-private-key-file': 'signature_private_key_file',
    'signature-certificate-list': 'signature_certificate_list',
  },
  networkcache: {
    'binary-cache-url-blacklist': 'download-from-binary-cache-url-blacklist',
  },
};

/** Keys that the reference turned into errors. */
export const DEPRECATED: Record<string, Record<string, string>> = {
  slapformat: {
    bridge_name: 'bridges are configured with interface_name and tap_mode = bridge',
    no_bridge: 'bridges are configured with interface_name and tap_mode = bridge',
  },
};

export const SECTIONS = {
  slapos: slaposSection,
  slapformat: slapformatSection,
  networkcache: networkcacheSection,
  slapproxy: slapproxySection,
  daemon: daemonSection,
} as const;

export type SectionName = keyof typeof SECTIONS;
export type SlaposSection = z.output<typeof slaposSection>;
export type SlapformatSection = z.output<typeof slapformatSection>;
export type NetworkcacheSection = z.output<typeof networkcacheSection>;
export type SlapproxySection = z.output<typeof slapproxySection>;
export type DaemonSection = z.output<typeof daemonSection>;
