// Reading the state file (computer_xml) with the shared xml_marshaller
// decoder. Its own module: the decoder (and its XML parser) is loaded only
// when computer_json cannot stand in for the XML (see storedFromJson).
import { loads } from '../slap/marshal-decode.js';
import { plain, type Dict } from './computer-xml.js';

/**
 * Reads a state file (ours or slapos.core's) with the shared decoder. Only the
 * value types the computer dict uses are accepted, so the rest of format can
 * treat it as plain data.
 */
export function loadsState(xml: string): Dict {
  const value = loads(xml);
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !plain(value)) {
    throw new Error('not a marshalled computer dictionary (a dictionary of strings, integers, booleans, None, lists and dictionaries)');
  }
  return value as Dict;
}
