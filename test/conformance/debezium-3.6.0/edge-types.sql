-- The workload behind edge-types.*.json (same connector settings as all-types.sql, topic.prefix=dbz2).
-- Rows 1-3 exist before the connector starts (the snapshot); rows 4-5 are inserted while it streams.
create extension if not exists hstore;
create table public.edge_types (
  id bigint primary key, d date, ts timestamp(6), ts0 timestamp(0), ts3 timestamp(3), tstz timestamptz, tstz3 timestamptz(3), tstz0 timestamptz(0),
  t0 time(0), t3 time(3), t6 time(6), ttz3 timetz(3), b1 bit(1), vb5 varbit(5), bits16 bit(16), m money, numarr numeric(6,2)[], num0 numeric(5,0), numneg numeric,
  h hstore, dtarr date[], big_text varchar(5) default 'ab''c', small_d smallint default -3, nd numeric(8,3) default 1.5, ddef date default '2020-02-02', uarr uuid[], jarr jsonb[], iarr int8[], earr mood[], f4 real, f8 double precision
);
alter table public.edge_types replica identity full;
insert into public.edge_types (id, d, ts, ts0, ts3, tstz, tstz3, tstz0, t0, t3, t6, ttz3, b1, vb5, bits16, m, numarr, num0, numneg, h, dtarr, uarr, jarr, iarr, earr, f4, f8) values
 (1, '-infinity', '-infinity', 'infinity', 'infinity', '-infinity', '2024-01-01 10:00:00.5+00', '2024-01-01 10:00:00.5+00', '10:00:00', '10:00:00.123', '10:00:00.123456', '10:00:00.123+05:30', '1', '10101', '1000000000000001', -1234.56, '{1.5,NULL,-2.25}', 12345, -0.5, 'a=>1, "b c"=>NULL', '{2024-01-01,infinity}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', array['{"a":1}'::jsonb], '{9223372036854775807,-1}', '{sad,happy}', 3.4028235e38, 2.2250738585072014e-308),
 (2, '2000-01-01', '2000-01-01 00:00:00', '1999-12-31 23:59:59', '1999-12-31 23:59:59.999', '2000-01-01 00:00:00+00', '2000-01-01 00:00:00+00', '2000-01-01 00:00:00.4+00', '23:59:59', '23:59:59.999', '24:00:00', '00:00:00+00', '0', '', '0000000000000000', 0, '{}', -99999, 1e-20, '', '{}', '{}', '{}', '{}', '{}', 1.1, 0.1),
 (3, '0001-01-01 BC', '0001-01-01 00:00:00 BC', null, null, '0001-01-01 00:00:00+00 BC', null, null, null, null, null, null, null, null, null, 1000000, null, null, 123456789012345678901234567890.123456789, null, null, null, null, null, null, -1e-45, '-0');
-- streamed
insert into public.edge_types (id, d, ts, ts0, tstz, dtarr) values (4, 'infinity', 'infinity', '-infinity', 'infinity', '{-infinity,infinity}'), (5, '-infinity', '-infinity', null, '-infinity', null);
