"""Events staffed by volunteer shifts: signups with exact capacity, waiting lists, notices."""
