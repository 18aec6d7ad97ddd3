// Master semantics on SQLite (the suite is shared with postgres.test.ts).
import { defineSemantics } from '../helpers/semantics-suite.js';

defineSemantics('');
