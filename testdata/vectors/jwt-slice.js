expect: finding
rule: aws-access-key
comment: an ID beside a JWT whose signature holds a '_': the 40 characters before it are a slice of a longer token, not a secret
pair: AKIAMBT57BFP2VYVFO2C -

const keyId = "AKIAMBT57BFP2VYVFO2C";
const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.hazwCROZMLVc03Zuj2wtvMURtUq3tXHflYOO06Um_x9Q";
