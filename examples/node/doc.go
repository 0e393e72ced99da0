// Package node holds the test of the Node.js ERP publisher example (publish.mjs): the example
// itself is JavaScript, run with npm and node against a pipeline started by the test.
package node
