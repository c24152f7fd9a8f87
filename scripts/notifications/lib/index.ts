export * from './digest.ts'
export * from './expiry.ts'
export * from './rules.ts'
export * from './watermark.ts'
