import type { Config } from '../config/config.ts'
import { retry } from '../runtime/retry.ts'

/** A Slack incoming-webhook message (text is the fallback; blocks optional). */
export interface SlackMessage {
  text: string
  blocks?: unknown[]
  attachments?: unknown[]
}

/** Sends one message to SLACK_WEBHOOK_URL; 10s timeout, 3 attempts on transient errors. @slack/webhook loads only here. */
export async function sendSlack(config: Pick<Config, 'slackWebhookUrl'>, message: SlackMessage): Promise<void> {
  if (!config.slackWebhookUrl) throw new Error('SLACK_WEBHOOK_URL is not set')
  const { IncomingWebhook } = await import('@slack/webhook')
  const webhook = new IncomingWebhook(config.slackWebhookUrl, { timeout: 10_000 })
  await retry({ attempts: 3, minDelay: '500ms', maxDelay: '4s', retryable: slackRetryable }, async () => {
    try {
      await webhook.send(message as Parameters<typeof webhook.send>[0])
    } catch (err) {
      // @slack/webhook 8 throws IncomingWebhookHTTPError (statusCode) or, when no response came, a request error wrapping
      // the fetch failure (errno in its cause); surface status and errno for classification.
      const e = err as { statusCode?: number; code?: string; original?: { code?: string; cause?: { code?: string } } }
      const noResponse = e.code === 'slack_webhook_request_error'
      throw Object.assign(
        new Error(
          e.statusCode ? `Slack webhook answered HTTP ${e.statusCode}` : 'Slack webhook request failed (no response)',
          { cause: err },
        ),
        {
          status: e.statusCode,
          code: noResponse ? (e.original?.cause?.code ?? e.original?.code ?? 'ETIMEDOUT') : undefined,
        },
      )
    }
  })
}

function slackRetryable(err: unknown): boolean {
  const e = err as { status?: number; code?: string }
  if (e.status !== undefined) return e.status === 429 || e.status >= 500
  return e.code !== undefined
}
