/** Replaces the password of a URL with `***` (`postgres://u:***@host/db`); leaves other text untouched. */
export function redactUrl(value: string): string {
  return value.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)([^@\s]+)(@)/gi, '$1***$3')
}

/** Makes a masker that replaces every given secret (and URL passwords) in a text with `***`. */
export function createMasker(secrets: readonly string[]): (text: string) => string {
  const sorted = [...new Set(secrets.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length)
  return (text) => {
    let out = redactUrl(text)
    for (const secret of sorted) if (out.includes(secret)) out = out.split(secret).join('***')
    return out
  }
}
