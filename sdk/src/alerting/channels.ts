import type { Config } from '../config/config.ts'
import { toError } from '../runtime/errors.ts'

/** One email as a channel sends it: already rendered, with its stable Message-ID. */
export interface EmailMessage {
  subject: string
  text: string
  html?: string
  attachments?: readonly { filename: string; content: Buffer | string; contentType?: string; cid?: string }[]
  messageId?: string
}

/** A Slack incoming-webhook message (text is the fallback; blocks optional). */
export interface SlackMessage {
  text: string
  blocks?: unknown[]
  attachments?: unknown[]
}

/**
 * How a send failed: `transient` (try again later: a 4xx SMTP reply, HTTP 429/5xx, a refused connection),
 * `permanent` (this message can never go: a 5xx SMTP reply for the recipient, HTTP 400), `stalled` (no answer in
 * time: it may or may not have arrived, and the channel is not worth more waits this round).
 */
export type FailureKind = 'transient' | 'permanent' | 'stalled'

/** A failed send, classified. */
export class DeliveryError extends Error {
  override name = 'DeliveryError'
  constructor(
    message: string,
    readonly kind: FailureKind,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** How long one send may take before the channel counts as stalled (SMTP: per phase; Slack: the request). */
export const channelTimeouts: Readonly<Record<'connectMs' | 'greetingMs' | 'socketMs' | 'slackMs', number>> =
  Object.freeze({
    connectMs: 10_000,
    greetingMs: 10_000,
    socketMs: 15_000,
    slackMs: 10_000,
  })

/** An open email channel (one SMTP connection pool for a delivery round); `close` when the round ends. */
export interface EmailChannel {
  send(message: EmailMessage, recipients: readonly string[]): Promise<void>
  close(): void
}

/**
 * Opens SMTP_URL for one round of sends, from `admin-jobs (<environment>) <ALERT_EMAIL_FROM>`. The envelope names
 * exactly the given recipients, so no header can add one.
 * nodemailer loads only here.
 */
export async function openEmail(
  config: Pick<Config, 'smtpUrl' | 'alertEmailFrom' | 'environment'>,
  timeouts: Partial<typeof channelTimeouts> = {},
): Promise<EmailChannel> {
  const t = { ...channelTimeouts, ...timeouts }
  if (!config.smtpUrl) throw new DeliveryError('SMTP_URL is not set', 'permanent')
  const { default: nodemailer } = await import('nodemailer')
  const transport = nodemailer.createTransport({
    url: config.smtpUrl,
    pool: true,
    maxConnections: 1,
    connectionTimeout: t.connectMs,
    greetingTimeout: t.greetingMs,
    socketTimeout: t.socketMs,
  } as Parameters<typeof nodemailer.createTransport>[0])
  return {
    async send(message, recipients) {
      try {
        await transport.sendMail({
          // The sender's name says which deployment wrote, so mail from staging never reads as production.
          from: { name: `admin-jobs (${config.environment})`, address: config.alertEmailFrom },
          to: [...recipients],
          envelope: { from: config.alertEmailFrom, to: [...recipients] },
          subject: message.subject,
          text: message.text,
          html: message.html,
          attachments: message.attachments?.map((a) => ({ ...a })),
          messageId: message.messageId,
        })
      } catch (err) {
        throw classifySmtp(err)
      }
    },
    close: () => transport.close(),
  }
}

function classifySmtp(err: unknown): DeliveryError {
  const e = err as { responseCode?: number; code?: string }
  const reason = toError(err).message.split('\n')[0] ?? 'SMTP error'
  if (typeof e.responseCode === 'number') {
    return new DeliveryError(reason, e.responseCode >= 500 ? 'permanent' : 'transient', { cause: err })
  }
  if (e.code === 'ETIMEDOUT' || /timeout/i.test(e.code ?? ''))
    return new DeliveryError(reason, 'stalled', { cause: err })
  return new DeliveryError(reason, 'transient', { cause: err })
}

/** Posts one message to SLACK_WEBHOOK_URL within `channelTimeouts.slackMs`. @slack/webhook loads only here. */
export async function postSlack(
  config: Pick<Config, 'slackWebhookUrl'>,
  message: SlackMessage,
  timeoutMs = channelTimeouts.slackMs,
): Promise<void> {
  if (!config.slackWebhookUrl) throw new DeliveryError('SLACK_WEBHOOK_URL is not set', 'permanent')
  const { IncomingWebhook } = await import('@slack/webhook')
  const webhook = new IncomingWebhook(config.slackWebhookUrl, { timeout: timeoutMs })
  try {
    await webhook.send(message as Parameters<typeof webhook.send>[0])
  } catch (err) {
    // @slack/webhook throws IncomingWebhookHTTPError (statusCode) or, when no response came, a request error wrapping
    // the fetch failure (errno in its cause).
    const e = err as {
      statusCode?: number
      code?: string
      original?: { name?: string; code?: unknown; cause?: { code?: string } }
    }
    if (e.statusCode) {
      const kind = e.statusCode === 400 ? 'permanent' : 'transient'
      throw new DeliveryError(`Slack webhook answered HTTP ${e.statusCode}`, kind, { cause: err })
    }
    const original = e.original
    const errno = original?.cause?.code ?? (typeof original?.code === 'string' ? original.code : undefined)
    const timedOut = original?.name === 'TimeoutError' || original?.name === 'AbortError'
    const stalled = timedOut || !errno || errno === 'ETIMEDOUT' || errno === 'UND_ERR_HEADERS_TIMEOUT'
    throw new DeliveryError(
      `Slack webhook request failed (${errno ?? `no answer within ${timeoutMs}ms`})`,
      stalled ? 'stalled' : 'transient',
      { cause: err },
    )
  }
}
