// Apollo Client 4 with PersistedQueryLink (automatic persisted queries) against a live server.
//
//   USERTRAIL_KEY=... node persisted.mjs http://127.0.0.1:8000/graphql
//
// Runs, in order: a `track` mutation and the same mutation again (POST: Apollo never sends a
// mutation by GET), a users query twice over POST, and an eventNames query twice with
// useGETForHashedQueries. Each operation goes first by hash alone; the server answers
// PersistedQueryNotFound for a hash it does not know and the link resends with the text.
// Prints one JSON line: the result of each step and every HTTP request the link made
// (method, whether it carried the query text, whether it carried the hash).
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { createHash } from 'node:crypto';

const url = process.argv[2];
if (!url) {
  console.error('usage: node persisted.mjs URL');
  process.exit(2);
}
const key = process.env.USERTRAIL_KEY;
const identity = process.env.USERTRAIL_IDENTITY ?? 'apollo-apq@example.com';
const sent = [];

async function recordingFetch(input, init = {}) {
  const target = new URL(typeof input === 'string' ? input : input.url);
  const method = (init.method ?? 'GET').toUpperCase();
  const payload =
    method === 'GET'
      ? {
          query: target.searchParams.get('query') ?? undefined,
          extensions: JSON.parse(target.searchParams.get('extensions') ?? '{}'),
        }
      : JSON.parse(init.body);
  sent.push({
    method,
    withText: typeof payload.query === 'string',
    withHash: Boolean(payload.extensions?.persistedQuery?.sha256Hash),
  });
  return fetch(input, init);
}

function client({ useGET }) {
  const http = new HttpLink({
    uri: url,
    fetch: recordingFetch,
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
  const persisted = new PersistedQueryLink({
    sha256: (text) => createHash('sha256').update(text).digest('hex'),
    useGETForHashedQueries: useGET,
  });
  return new ApolloClient({ link: ApolloLink.from([persisted, http]), cache: new InMemoryCache() });
}

const TRACK = gql`
  mutation Track($input: TrackInput!) {
    track(input: $input) {
      accepted
      errors { code message }
    }
  }
`;
const USERS = gql`
  query Users {
    users(first: 10) { edges { node { userId identity eventCount } } }
  }
`;
const EVENT_NAMES = gql`
  query EventNames {
    eventNames { type count }
  }
`;

const steps = [];
async function step(name, run) {
  const before = sent.length;
  try {
    const result = await run();
    steps.push({ name, data: result.data ?? null, requests: sent.slice(before) });
  } catch (error) {
    steps.push({ name, error: String(error?.message ?? error), requests: sent.slice(before) });
  }
}

const byPost = client({ useGET: false });
const byGet = client({ useGET: true });
for (const n of [1, 2]) {
  await step(`track ${n}`, () =>
    byPost.mutate({
      mutation: TRACK,
      variables: { input: { event: 'Report Exported', identity, properties: { n } } },
    }),
  );
}
for (const n of [1, 2]) {
  await step(`users ${n}`, () => byPost.query({ query: USERS, fetchPolicy: 'network-only' }));
}
for (const n of [1, 2]) {
  await step(`eventNames by GET ${n}`, () =>
    byGet.query({ query: EVENT_NAMES, fetchPolicy: 'network-only' }),
  );
}
console.log(JSON.stringify(steps));
