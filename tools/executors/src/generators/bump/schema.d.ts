export interface Options {
  name: string;
  minor?: number;
}
