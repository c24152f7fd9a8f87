import { NonRetryableError } from '@admin-jobs/sdk'
import type { Sql } from 'postgres'

/** One leaf partition of a range-partitioned table; `from`/`to` are null for MINVALUE/MAXVALUE (and the default). */
export interface RangePartition {
  /** Schema-qualified name, e.g. `public.audit_logs_2026_01`. */
  name: string
  from: Date | null
  to: Date | null
  isDefault: boolean
}

/** How a table is stored: a plain heap, or declaratively range-partitioned on `column` with its leaf partitions. */
export type TableLayout = { kind: 'plain' } | { kind: 'partitioned'; column: string; partitions: RangePartition[] }

const strategies: Record<string, string> = { r: 'range', l: 'list', h: 'hash' }

/**
 * Reads the layout of `table` (in `public` unless qualified) and refuses (NonRetryableError, exit 1) every layout the engines cannot handle
 * in full, so that no run reports success on rows it never looked at: inheritance children, list or hash partitioning,
 * a range on anything but `rangeColumn` alone, sub-partitions, foreign partitions. `rangeColumn` undefined: only a
 * plain table is accepted.
 */
export async function readTableLayout(sql: Sql, table: string, rangeColumn?: string): Promise<TableLayout> {
  const qualified = table.includes('.') ? table : `public.${table}`
  const [rel] = await sql<{ kind: string; strategy: string | null; keys: string[] | null; children: string[] }[]>`
    select c.relkind::text as kind, pt.partstrat::text as strategy,
      (select array_agg(coalesce(a.attname::text, '(expression)') order by k.ord)
       from unnest(pt.partattrs::int2[]) with ordinality k(attnum, ord)
       left join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum) as keys,
      array(select i.inhrelid::regclass::text from pg_inherits i where i.inhparent = c.oid order by 1) as children
    from pg_class c left join pg_partitioned_table pt on pt.partrelid = c.oid
    where c.oid = ${qualified}::regclass`
  if (!rel) throw new NonRetryableError(`table ${qualified} not found`)
  const refuse = (what: string) =>
    new NonRetryableError(
      `${qualified} is ${what}: this job handles a plain table${
        rangeColumn ? ` or one declaratively partitioned by range on ${rangeColumn}` : ''
      }, and changes nothing on any other layout`,
    )
  if (rel.kind === 'r') {
    if (rel.children.length)
      throw refuse(
        `a parent of inheritance children (${rel.children.slice(0, 3).join(', ')}${rel.children.length > 3 ? ', …' : ''})`,
      )
    return { kind: 'plain' }
  }
  if (rel.kind !== 'p') throw refuse(`not a table (relkind ${rel.kind})`)
  const strategy = strategies[rel.strategy ?? ''] ?? rel.strategy ?? 'unknown'
  const keys = (rel.keys ?? []).join(', ')
  if (!rangeColumn) throw refuse(`partitioned by ${strategy} (${keys})`)
  if (strategy !== 'range' || keys !== rangeColumn) throw refuse(`partitioned by ${strategy} (${keys})`)
  const leaves = await sql<{ name: string; kind: string; bound: string; from_at: Date | null; to_at: Date | null }[]>`
    select n.nspname || '.' || c.relname as name, c.relkind::text as kind, pg_get_expr(c.relpartbound, c.oid) as bound,
      (regexp_match(pg_get_expr(c.relpartbound, c.oid), $$^FOR VALUES FROM [(]'(.*)'[)] TO [(]$$))[1]::timestamptz as from_at,
      (regexp_match(pg_get_expr(c.relpartbound, c.oid), $$ TO [(]'(.*)'[)]$$))[1]::timestamptz as to_at
    from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_namespace n on n.oid = c.relnamespace
    where i.inhparent = ${qualified}::regclass
    order by 4 nulls first, 1`
  const nested = leaves.filter((l) => l.kind !== 'r')
  if (nested.length) {
    const what = nested.map((l) => `${l.name} (${l.kind === 'p' ? 'itself partitioned' : `relkind ${l.kind}`})`)
    throw refuse(`partitioned with partitions that are not plain tables: ${what.join(', ')}`)
  }
  return {
    kind: 'partitioned',
    column: rangeColumn,
    partitions: leaves.map((l) => ({ name: l.name, from: l.from_at, to: l.to_at, isDefault: l.bound === 'DEFAULT' })),
  }
}
