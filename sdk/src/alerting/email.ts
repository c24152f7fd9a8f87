import type { Config } from '../config/config.ts'
import { retry } from '../runtime/retry.ts'

/** One email; `to` defaults to ALERT_EMAIL_TO. Attachments may be inline (`cid`). */
export interface EmailMessage {
  to?: string | readonly string[]
  subject: string
  text: string
  html?: string
  attachments?: { filename: string; content: Buffer | string; contentType?: string; cid?: string }[]
}

/** Sends one email over SMTP_URL; 10s connection/socket timeouts, 3 attempts on transient errors. nodemailer loads only here. */
export async function sendEmail(
  config: Pick<Config, 'smtpUrl' | 'alertEmailFrom' | 'alertEmailTo'>,
  message: EmailMessage,
): Promise<void> {
  if (!config.smtpUrl) throw new Error('SMTP_URL is not set')
  const to = message.to === undefined ? config.alertEmailTo : typeof message.to === 'string' ? [message.to] : message.to
  if (to.length === 0) throw new Error('no recipient (ALERT_EMAIL_TO is empty)')
  const { default: nodemailer } = await import('nodemailer')
  const transport = nodemailer.createTransport({
    url: config.smtpUrl,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 15_000,
  } as Parameters<typeof nodemailer.createTransport>[0])
  try {
    await retry({ attempts: 3, minDelay: '500ms', maxDelay: '4s', retryable: smtpRetryable }, () =>
      transport.sendMail({
        from: config.alertEmailFrom,
        to: [...to],
        subject: message.subject,
        text: message.text,
        html: message.html,
        attachments: message.attachments,
      }),
    )
  } finally {
    transport.close()
  }
}

function smtpRetryable(err: unknown): boolean {
  const e = err as { responseCode?: number; code?: string }
  if (typeof e.responseCode === 'number') return e.responseCode >= 400 && e.responseCode < 500
  return ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'ECONNRESET', 'ECONNREFUSED'].includes(e.code ?? '')
}
