import nodemailer from 'nodemailer'
import { describe, expect, it } from 'vitest'
import { httpFaults, type SmtpCapture, startHttp, startSmtp } from './support/servers.ts'

// The misbehaving SMTP and HTTP servers that fault tests put behind the channels, checked against real clients.

async function send(
  smtp: SmtpCapture,
  subject: string,
  timeouts: { greetingTimeout?: number; socketTimeout?: number } = {},
) {
  const transport = nodemailer.createTransport({ url: smtp.url, ignoreTLS: true, ...timeouts } as any)
  const started = Date.now()
  try {
    await transport.sendMail({ from: 'jobs@example.test', to: 'ops@example.test', subject, text: 'body' })
    return { ms: Date.now() - started, error: undefined as any }
  } catch (error) {
    return { ms: Date.now() - started, error: error as any }
  } finally {
    transport.close()
  }
}

describe('the fault SMTP server', () => {
  it('accepts and parses mail while it behaves', async () => {
    const smtp = await startSmtp()
    const { error } = await send(smtp, 'hello')
    expect(error).toBeUndefined()
    expect(smtp.messages.map((m) => m.subject)).toEqual(['hello'])
    expect(smtp.attempts).toHaveLength(1)
    await smtp.close()
  })

  it('greets late when slow: a patient client gets through, an impatient one times out', async () => {
    const smtp = await startSmtp({ kind: 'slow-greeting', delayMs: 800 })
    const patient = await send(smtp, 'patient')
    expect(patient.error).toBeUndefined()
    expect(patient.ms).toBeGreaterThanOrEqual(750)
    const impatient = await send(smtp, 'impatient', { greetingTimeout: 200 })
    expect(impatient.error?.code).toBe('ETIMEDOUT')
    expect(smtp.messages.map((m) => m.subject)).toEqual(['patient'])
    await smtp.close()
  })

  it('takes the DATA and never answers when hanging, so the client can only time out', async () => {
    const smtp = await startSmtp({ kind: 'hang-after-data' })
    const { error, ms } = await send(smtp, 'into the void', { socketTimeout: 500 })
    expect(error?.code).toBe('ETIMEDOUT')
    expect(ms).toBeLessThan(3_000)
    expect(smtp.attempts.map((m) => m.subject)).toEqual(['into the void'])
    expect(smtp.messages).toHaveLength(0)
    await smtp.close()
  })

  it('refuses mail with a 5xx before any DATA', async () => {
    const smtp = await startSmtp({ kind: 'refuse', code: 554 })
    const { error } = await send(smtp, 'refused')
    expect(error?.responseCode).toBe(554)
    expect(smtp.attempts).toHaveLength(0)
    await smtp.close()
  })

  it('drops the connection after DATA without an answer, then behaves again when the fault is cleared', async () => {
    const smtp = await startSmtp({ kind: 'close-after-data' })
    const dropped = await send(smtp, 'dropped')
    expect(dropped.error).toBeInstanceOf(Error)
    expect(smtp.attempts).toHaveLength(1)
    expect(smtp.messages).toHaveLength(0)
    smtp.setFault(undefined)
    const again = await send(smtp, 'again')
    expect(again.error).toBeUndefined()
    expect(smtp.messages.map((m) => m.subject)).toEqual(['again'])
    await smtp.close()
  })
})

describe('the fault HTTP server', () => {
  it('hangs, answers 500 or drops the connection, recording every request', async () => {
    const http = await startHttp(httpFaults.hang())
    const hung = await fetch(http.url, { method: 'POST', body: 'a', signal: AbortSignal.timeout(300) }).catch((e) => e)
    expect(hung.name).toBe('TimeoutError')

    http.setHandler(httpFaults.status(500, 'broken'))
    const failed = await fetch(http.url, { method: 'POST', body: 'b' })
    expect(failed.status).toBe(500)
    expect(await failed.text()).toBe('broken')

    http.setHandler(httpFaults.close())
    const dropped = await fetch(http.url, { method: 'POST', body: 'c' }).catch((e) => e)
    expect(dropped).toBeInstanceOf(TypeError)
    expect(dropped.cause?.code).toBe('UND_ERR_SOCKET')

    expect(http.requests.map((r) => r.body)).toEqual(['a', 'b', 'c'])
    const closing = Date.now()
    await http.close()
    expect(Date.now() - closing).toBeLessThan(1_000)
  })
})
