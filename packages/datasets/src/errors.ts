/** A data file or folder the user can fix (missing, unreadable, inconsistent); the message names it. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}
