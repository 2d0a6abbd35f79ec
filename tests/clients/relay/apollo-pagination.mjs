// Apollo Client 4 pages the Users list of a real Usertrail server with relayStylePagination:
// from a page in the middle (as a deep link opens it), fetchMore forward to the end, then
// back with last/before to the start. Prints, as the last line, JSON: the userIds the merged
// cache holds, in order, and what each fetch answered. Run by tests/clients/test_relay_clients.py:
//   node apollo-pagination.mjs <graphql url> <page size> <after cursor of the opening page>
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { relayStylePagination } from "@apollo/client/utilities";

const [url, size, opening] = process.argv.slice(2);
const pageSize = Number(size);

const USERS = gql`
  query Users($first: Int, $after: String, $last: Int, $before: String) {
    users(first: $first, after: $after, last: $last, before: $before) {
      edges {
        cursor
        node {
          id
          userId
        }
      }
      pageInfo {
        hasNextPage
        hasPreviousPage
        startCursor
        endCursor
      }
    }
  }
`;

const client = new ApolloClient({
  link: new HttpLink({ uri: url }),
  cache: new InMemoryCache({
    typePolicies: { Query: { fields: { users: relayStylePagination(["filter"]) } } },
  }),
});

const fetches = [];
function record(direction, result) {
  const { edges, pageInfo } = result.data.users;
  fetches.push({ direction, users: edges.map((edge) => edge.node.userId), pageInfo });
}

const watched = client.watchQuery({
  query: USERS,
  variables: { first: pageSize, after: opening },
});
let watchedUsers = null; // what the watching component last rendered
const subscription = watched.subscribe({
  next: (result) => {
    watchedUsers = result.data?.users ?? watchedUsers;
  },
  error: (error) => console.error(error),
});
record("opening", await watched.refetch());

function merged() {
  return client.readQuery({ query: USERS, variables: { first: pageSize, after: opening } }).users;
}

while (merged().pageInfo.hasNextPage) {
  const after = merged().pageInfo.endCursor;
  record("forward", await watched.fetchMore({ variables: { after } }));
}
while (merged().pageInfo.hasPreviousPage) {
  const before = merged().pageInfo.startCursor;
  // fetchMore's variables are laid over the query's: the forward ones are cleared.
  const variables = { first: null, after: null, last: pageSize, before };
  record("backward", await watched.fetchMore({ variables }));
}

await new Promise((resolve) => setTimeout(resolve, 50)); // the last emission, if pending
subscription.unsubscribe();
console.log(
  JSON.stringify({
    merged: merged().edges.map((edge) => edge.node.userId),
    watched: watchedUsers.edges.map((edge) => edge.node.userId),
    pageInfo: merged().pageInfo,
    fetches,
  }),
);
