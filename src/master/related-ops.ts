// Related instances: the list of instance titles a partition's buildout requested
// (the node posts it with updateComputerPartitionRelatedInstanceList after a
// successful run), and the garbage collection of the child instances that their
// parent no longer requests. The rule (docs/master.md "Related instances"):
// a child instance is asked to be destroyed when a title leaves the list of the
// instance that had listed it, and no other allocated instance of the same tree
// still lists it. Only titles that were listed once are ever collected; roots
// and shared instances never are.
import { nextTimestamp, requirePartition } from './node-ops.js';
import type { PartitionRow, Tx } from './store.js';
import { badRequest, checkTitle, notFound } from './validate.js';

/** At most this many titles in one list (a profile requests tens of instances, not thousands). */
export const MAX_RELATED = 10_000;

/** Titles of the posted list: non-empty, checked, first occurrence kept. Pure. */
export function relatedTitles(value: unknown): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw badRequest('instance_reference_xml must be a marshalled list of strings');
  }
  const titles = [...new Set((value as string[]).filter((v) => v !== ''))];
  if (titles.length > MAX_RELATED) throw badRequest(`instance_reference_xml lists more than ${MAX_RELATED} titles`);
  return titles.map((title) => checkTitle('related instance title', title));
}

/** Titles in `previous` that `next` no longer has. Pure. */
export function droppedTitles(previous: readonly string[], next: readonly string[]): string[] {
  const keep = new Set(next);
  return previous.filter((title) => !keep.has(title));
}

const treeOf = (row: PartitionRow): string => row.requested_by || row.partition_reference || '';

/** Asks the dropped children of `lister`'s tree to be destroyed unless another instance of the tree lists them. */
async function collect(tx: Tx, lister: PartitionRow, dropped: string[]): Promise<string[]> {
  const tree = treeOf(lister);
  const destroyed: string[] = [];
  for (const title of dropped) {
    if (title === tree || title === lister.partition_reference) continue;
    const child = await tx.findInstance(title, tree);
    if (!child || child.requested_state === 'destroyed') continue;
    let stillListed = false;
    for (const other of await tx.listRelatedBy(title)) {
      if (other.computer_reference === lister.computer_reference && other.partition_reference === lister.reference) continue;
      const row = await tx.getPartition(other.computer_reference, other.partition_reference);
      if (row && row.slap_state === 'busy' && treeOf(row) === tree) {
        stillListed = true;
        break;
      }
    }
    if (stillListed) continue;
    await tx.updatePartition(child.computer_reference, child.reference, { requested_state: 'destroyed', timestamp: nextTimestamp(child.timestamp) });
    destroyed.push(title);
  }
  return destroyed;
}

/** updateComputerPartitionRelatedInstanceList: records the list; returns the titles asked to be destroyed. */
export async function updateRelated(tx: Tx, computer: string, partition: string, titles: string[]): Promise<string[]> {
  const row = await requirePartition(tx, computer, partition);
  if (row.slap_state !== 'busy' || !row.partition_reference) throw notFound(`partition ${partition} is not allocated`);
  const previous = await tx.listRelated(computer, partition);
  await tx.replaceRelated(computer, partition, titles);
  return collect(tx, row, droppedTitles(previous, titles));
}

/** The partition is being freed: its list goes, and what only it listed is collected. */
export async function forgetRelated(tx: Tx, row: PartitionRow): Promise<string[]> {
  const previous = await tx.listRelated(row.computer_reference, row.reference);
  if (previous.length === 0) return [];
  await tx.replaceRelated(row.computer_reference, row.reference, []);
  return row.slap_state === 'busy' && row.partition_reference ? collect(tx, row, previous) : [];
}
