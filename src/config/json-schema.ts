import { z } from 'zod';
import { planSchema } from './schema.js';

/** The JSON Schema of migration.yml, generated from the zod schema (what people write: the input side). */
export function planJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(planSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...schema,
    $id: 'https://pgshift.dev/schema/migration.schema.json',
    title: 'pgshift migration plan',
  };
}

export function planJsonSchemaText(): string {
  return `${JSON.stringify(planJsonSchema(), null, 2)}\n`;
}
