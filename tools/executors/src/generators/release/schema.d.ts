export interface Options {
  name: string;
  from: string;
  major: number;
  minor: number;
}
