package tasks

// Due is due, for the tests of package tasks_test.
var Due = due
