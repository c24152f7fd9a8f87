import { defineBenchCase } from '../harness.ts'
import { runPurgeLayouts } from '../support/purge-case.ts'

export default defineBenchCase({
  description:
    'cleanup/sessions on 2M rows (50% removable scattered, 40% at the heap start, 25% at its end, 1%) vs one DELETE',
  run: (h) => runPurgeLayouts(h, 'sessions'),
})
