/**
 * One email address, as data and settings must give it: a local part, one `@`, a domain with a dot; no spaces, line
 * breaks, commas, semicolons, angle brackets, quotes or comments, so a value can never smuggle in a second recipient
 * or a header.
 */
const addressPattern =
  /^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/

/** The address itself when `value` is exactly one plain email address (trimmed), otherwise undefined. */
export function singleAddress(value: string | null | undefined): string | undefined {
  const trimmed = value?.trim()
  if (!trimmed || trimmed.length > 254 || !addressPattern.test(trimmed)) return undefined
  return trimmed
}

/** Why `value` is not one address, in words for a log line or a refused delivery (never echoing a line break). */
export function whyNotAnAddress(value: string | null | undefined): string {
  const text = value ?? ''
  if (!text.trim()) return 'no address'
  if (/[\r\n]/.test(text)) return 'it contains a line break'
  if (/[,;]/.test(text)) return 'it lists more than one address'
  if ((text.match(/@/g) ?? []).length !== 1) return 'it is not one address'
  return 'it is not a plain email address'
}
