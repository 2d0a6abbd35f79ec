// Fragments a Relay app would write for the Users & Sessions view: relay-compiler compiles
// them against schema.graphql (tests/clients/test_relay_clients.py). `graphql` comes from
// react-relay in an app; the compiler only reads the tagged templates.
/* global graphql */

// The Users page: paged both ways, refetched through the root.
export const usersList = graphql`
  fragment UsersPage_query on Query
  @refetchable(queryName: "UsersPagePaginationQuery")
  @argumentDefinitions(
    first: { type: "Int", defaultValue: 10 }
    after: { type: "String" }
    last: { type: "Int" }
    before: { type: "String" }
  ) {
    users(first: $first, after: $after, last: $last, before: $before)
      @connection(key: "UsersPage_users") {
      totalCount
      edges {
        node {
          id
          ...UsersPage_user
        }
      }
    }
  }
`;

// A user's card and sessions: refetched through node(id:).
export const userSessions = graphql`
  fragment UsersPage_user on User
  @refetchable(queryName: "UsersPageUserSessionsQuery")
  @argumentDefinitions(
    first: { type: "Int", defaultValue: 5 }
    after: { type: "String" }
    last: { type: "Int" }
    before: { type: "String" }
  ) {
    userId
    displayName
    lastSeen
    sessions(first: $first, after: $after, last: $last, before: $before)
      @connection(key: "UsersPage_user_sessions") {
      edges {
        node {
          id
          ...UsersPage_session
        }
      }
    }
  }
`;

// A session's timeline: events paged both ways, refetched through node(id:).
export const sessionEvents = graphql`
  fragment UsersPage_session on Session
  @refetchable(queryName: "UsersPageSessionEventsQuery")
  @argumentDefinitions(
    first: { type: "Int", defaultValue: 20 }
    after: { type: "String" }
    last: { type: "Int" }
    before: { type: "String" }
  ) {
    startTime
    source
    events(first: $first, after: $after, last: $last, before: $before)
      @connection(key: "UsersPage_session_events") {
      edges {
        node {
          id
          name
          time
        }
      }
    }
  }
`;

// A plain node(id:) refetch of one user.
export const userCard = graphql`
  fragment UsersPage_card on User @refetchable(queryName: "UsersPageCardRefetchQuery") {
    displayName
    identity
    sessionCount
  }
`;

export const page = graphql`
  query UsersPageQuery {
    ...UsersPage_query
    user(userId: "1") {
      ...UsersPage_card
    }
  }
`;
