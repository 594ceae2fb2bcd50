-- Too dark looks at the brightest 1 % too (issue 13): the 99th percentile of a photo's luma at
-- the working size. Null for photos measured before it was taken (judged on the mean alone).
alter table photo_measure add column highlight_luma double precision;
