// The master's query layer: row-level operations behind an interface, so the
// domain logic (node-ops.ts, instance-ops.ts) is written once. The queries are written once too
// (sql-store.ts, one migration list in migrations.ts); sqlite-store.ts and pg-store.ts are the two
// engines (connection, locking, transactions). Every operation runs inside a transaction.

export type SlapState = 'free' | 'busy';

export interface ComputerRow {
  reference: string;
  address: string | null;
  netmask: string | null;
}

export interface SoftwareRow {
  url: string;
  computer_reference: string;
  requested_state: string;
  reported_state: string | null;
  reported_at: number | null;
  error_log: string | null;
}

export interface PartitionRow {
  reference: string;
  computer_reference: string;
  slap_state: SlapState;
  software_release: string | null;
  /** Parameters, as instance XML. */
  xml: string | null;
  /** Connection parameters, as instance XML. */
  connection_xml: string | null;
  /** Marshalled list of shared-instance dicts (as the reference stores it). */
  slave_instance_list: string | null;
  software_type: string | null;
  /** The instance title. */
  partition_reference: string | null;
  /** '' for a root instance, else the title of the tree's root. */
  requested_by: string;
  requested_state: string;
  timestamp: number | null;
  reported_state: string | null;
  reported_at: number | null;
  error_log: string | null;
}

export interface NetworkRow {
  partition_reference: string;
  computer_reference: string;
  /** Interface name. */
  reference: string;
  address: string;
  netmask: string | null;
}

export interface SlaveRow {
  reference: string;
  computer_reference: string;
  connection_xml: string | null;
  hosted_by: string | null;
  asked_by: string | null;
}

export interface UsageRow {
  id: number;
  computer_reference: string;
  use_string: string;
  received_at: number;
}

export interface CertificateRow {
  computer_reference: string;
  partition_reference: string;
  /** SHA-256 fingerprint as node's X509Certificate.fingerprint256 (colon-separated hex). */
  fingerprint: string;
  certificate: string;
  key: string;
  issued_at: number;
}

export interface RelatedRow {
  computer_reference: string;
  partition_reference: string;
}

/** One shadir entry (network cache): the metadata JSON text exactly as signed, and its base64 signature. */
export interface ShadirRow {
  key: string;
  metadata: string;
  signature: string;
  sha512: string;
  created_at: number;
}

/** One bucket of usage_series (usage-series.ts). */
export interface SeriesBucketRow {
  computer_reference: string;
  partition_reference: string;
  bucket: number;
  total: number;
  samples: number;
  maximum: number;
}

/** Quantities to add to one bucket (usage-series.ts seriesWrites; one row per key). */
export interface SeriesWriteRow {
  partition: string;
  resource: string;
  resolution: number;
  bucket: number;
  total: number;
  samples: number;
  maximum: number;
}

/** A partition's last result of one promise, as its node reported it. */
export interface PromiseRow {
  computer_reference: string;
  partition_reference: string;
  name: string;
  status: string;
  message: string;
  checked_at: number;
  /** Since when the promise fails (null while it passes). */
  failing_since: number | null;
}

/** A computer's last hardware status (the JSON of src/slap/hardware-report.ts), as its node reported it. */
export interface HardwareRow {
  computer_reference: string;
  document: string;
  reported_at: number;
}

export interface PartitionCount {
  slap_state: SlapState;
  requested_state: string;
  count: number;
}

export type PartitionPatch = Partial<Omit<PartitionRow, 'reference' | 'computer_reference'>>;

/** Row operations available inside one transaction. */
export interface Tx {
  getComputer(reference: string): Promise<ComputerRow | undefined>;
  /**
   * Bumped at commit by every write that changes what getFullComputerInformation
   * answers for this computer (not by reports): a key for answer caches, valid
   * across master processes. Undefined for an unknown computer.
   */
  computerGeneration(computer: string): Promise<number | undefined>;
  upsertComputer(row: ComputerRow): Promise<void>;
  listComputers(): Promise<ComputerRow[]>;

  listSoftware(computer: string): Promise<SoftwareRow[]>;
  getSoftware(url: string, computer: string): Promise<SoftwareRow | undefined>;
  upsertSoftware(url: string, computer: string, requestedState: string): Promise<void>;
  reportSoftware(url: string, computer: string, state: string, errorLog: string | null, at: number): Promise<boolean>;
  deleteSoftware(url: string, computer: string): Promise<boolean>;
  /** Every software URL the master holds (software rows and partitions' software_release), once each. */
  listSoftwareUrls(): Promise<string[]>;
  /** Renames a software URL everywhere it is held (local_software_release_root, release-root.ts). */
  renameSoftwareUrl(from: string, to: string): Promise<void>;
  /** The master's own settings (release-root.ts): one value per name. */
  getSetting(name: string): Promise<string | undefined>;
  setSetting(name: string, value: string): Promise<void>;

  /** Partitions of a computer, in format order. */
  listPartitions(computer: string): Promise<PartitionRow[]>;
  /** Allocated partitions of every computer. */
  listBusyPartitions(): Promise<PartitionRow[]>;
  getPartition(computer: string, reference: string): Promise<PartitionRow | undefined>;
  /** The allocated instance with this title in this scope, on any computer. */
  findInstance(title: string, requestedBy: string): Promise<PartitionRow | undefined>;
  /** Busy partitions holding an instance of that title (any requester), in listBusyPartitions' order: an index lookup. */
  findInstancesByTitle(title: string): Promise<PartitionRow[]>;
  firstFreePartition(computer: string): Promise<PartitionRow | undefined>;
  /** Allocated partitions whose requested_by is this root title. */
  listChildren(rootTitle: string): Promise<PartitionRow[]>;
  insertPartition(computer: string, reference: string): Promise<void>;
  updatePartition(computer: string, reference: string, patch: PartitionPatch): Promise<void>;
  /** Deletes the partitions (and their shared instances) not in `keep`. */
  deletePartitionsExcept(computer: string, keep: string[]): Promise<void>;

  listNetwork(computer: string, partition: string): Promise<NetworkRow[]>;
  /** Every network row of a computer, in insertion order (one query for getFullComputerInformation). */
  listComputerNetwork(computer: string): Promise<NetworkRow[]>;
  replaceNetwork(computer: string, rows: NetworkRow[]): Promise<void>;

  getSlave(computer: string, reference: string): Promise<SlaveRow | undefined>;
  /** Shared instances of that reference on any computer (primary-key prefix lookup). */
  findSlaves(reference: string): Promise<SlaveRow[]>;
  upsertSlave(row: SlaveRow): Promise<void>;

  /** False when the computer already posted a report with this id (it was stored once). */
  insertUsage(computer: string, useString: string, at: number, reportId: string | null): Promise<boolean>;
  listUsage(computer: string): Promise<UsageRow[]>;
  /** The most recent usage report of each computer. */
  latestUsage(): Promise<UsageRow[]>;

  getCertificate(computer: string, partition: string): Promise<CertificateRow | undefined>;
  putCertificate(row: CertificateRow): Promise<void>;
  deleteCertificate(computer: string, partition: string): Promise<void>;

  /** Stores a computer registration token's digest (and forgets the expired ones). */
  putComputerToken(digest: string, createdBy: string, now: number, expiresAt: number): Promise<void>;
  /** Consumes a token: true if it existed and had not expired (it is gone either way). */
  takeComputerToken(digest: string, now: number): Promise<boolean>;

  /** The related-instance titles this partition last posted, in its order. */
  listRelated(computer: string, partition: string): Promise<string[]>;
  /** Replaces the partition's related-instance list (empty: forgets it). */
  replaceRelated(computer: string, partition: string, titles: string[]): Promise<void>;
  /** Partitions whose related-instance list holds this title. */
  listRelatedBy(title: string): Promise<RelatedRow[]>;

  /** Network cache: the entries of a shadir key, oldest first. */
  listShadir(key: string): Promise<ShadirRow[]>;
  /** Adds an entry unless the same (metadata, signature) is already under this key; true if added. */
  addShadir(row: ShadirRow): Promise<boolean>;
  /** Every blob some shadir entry names (pruning keeps them). */
  listShadirBlobs(): Promise<string[]>;
  /** Adds quantities to usage buckets (raw buckets are replaced: a resent journal does not count twice there). */
  addSeries(computer: string, writes: ReadonlyArray<SeriesWriteRow>): Promise<void>;
  /** Deletes the buckets of `resolution` older than `before`. */
  pruneSeries(resolution: number, before: number): Promise<number>;
  /** Buckets of one resource and resolution in [from, to), of one computer or of all. */
  listSeries(resource: string, resolution: number, from: number, to: number, computer?: string): Promise<SeriesBucketRow[]>;
  /** Replaces the promise results of a partition. */
  replacePromises(computer: string, partition: string, rows: PromiseRow[]): Promise<void>;
  /** Promise results of one computer or of all. */
  listPromises(computer?: string): Promise<PromiseRow[]>;

  /** Replaces a computer's hardware status. */
  putHardware(row: HardwareRow): Promise<void>;
  /** The last hardware status of every computer that sent one. */
  listHardware(): Promise<HardwareRow[]>;

  /** Counts for /metrics (numbers on both engines). */
  countComputers(): Promise<number>;
  countPartitions(): Promise<PartitionCount[]>;
  countUsage(): Promise<number>;
}

export interface Store {
  /** Runs `fn` in one write transaction: all of it is committed, or none. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Runs `fn` on a consistent read-only snapshot; it may run beside other reads and writes. */
  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
