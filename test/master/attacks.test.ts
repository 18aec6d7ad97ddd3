// The master under attack (issue 15) on SQLite; the same suite runs on PostgreSQL in postgres.test.ts.
import { defineAttacks } from '../helpers/attack-suite.js';

defineAttacks('');
