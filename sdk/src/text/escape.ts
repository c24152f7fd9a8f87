/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  )
}

// XML 1.0 forbids C0 controls (but tab, newline, carriage return), lone surrogates and U+FFFE/U+FFFF even as
// character references: one of them in a title would make the whole SVG unparseable.
const notXmlChar =
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/** Escapes text for XML/SVG content and attribute values; characters XML cannot hold become U+FFFD. */
export function escapeXml(text: string): string {
  return escapeHtml(text.replace(notXmlChar, '\ufffd'))
}
