// The user a partition's code runs as (owner of the partition directory).
export interface PartitionUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
